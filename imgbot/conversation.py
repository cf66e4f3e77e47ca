"""Answers one chat request: checks it, says it is working, runs the pipeline, replies.

Knows nothing of the DingTalk SDK; ``bot.py`` turns frames into ``ImageRequest`` values and calls
``Responder.respond`` in a tracked task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from imgbot import chat_texts
from imgbot.errors import ImgbotError, ReplyError
from imgbot.guards import Deduplicator, RateLimiter
from imgbot.markdown import TITLE, image_reply
from imgbot.models import ImageRequest
from imgbot.observe import NoObserver, Observer
from imgbot.pipeline import Pipeline
from imgbot.reply import Message, ReplySender

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """The bot's admission limits."""

    max_prompt_chars: int = 1000
    max_concurrent: int = 4
    max_queued: int = 16
    requests_per_minute: int = 6
    request_timeout: float = 180.0
    retention_days: int = 7


class Responder:
    """Turns requests into replies within the configured limits."""

    def __init__(
        self,
        pipeline: Pipeline,
        sender: ReplySender,
        limits: Limits,
        observer: Observer | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.sender = sender
        self.limits = limits
        self.observer = observer or NoObserver()
        self.dedup = Deduplicator()
        self.rate = RateLimiter(limits.requests_per_minute)
        self._slots = asyncio.Semaphore(limits.max_concurrent)
        self.admitted = 0  # requests past admission: drawing or waiting for a slot
        self.in_flight = 0
        self.peak_in_flight = 0
        self.outcomes: dict[str, int] = {}

    def is_new(self, msg_id: str) -> bool:
        """False for a message id already handled (redelivery after a missed ACK or reconnect)."""
        return self.dedup.first_time(msg_id)

    async def respond(self, request: ImageRequest) -> str:
        """Answer ``request``; return the outcome name. Never raises except on cancellation."""
        started = time.perf_counter()
        outcome = "failed"
        timings: dict[str, float] = {}
        try:
            outcome = await self._respond(request, timings)
        except ImgbotError as exc:
            log.warning("msg %s: reply failed: %s", request.msg_id, exc)
        except Exception:
            log.exception("msg %s: unexpected error", request.msg_id)
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.observer.outcome(outcome)
        stages = " ".join(f"{name}={seconds:.3f}s" for name, seconds in timings.items())
        log.info(
            "msg %s: outcome=%s %s total=%.3fs",
            request.msg_id,
            outcome,
            stages,
            time.perf_counter() - started,
        )
        return outcome

    async def _respond(self, request: ImageRequest, timings: dict[str, float]) -> str:
        refusal = self._check(request)
        if refusal is not None:
            outcome, text = refusal
            await self._say(request, text)
            return outcome
        # Admission is decided and counted before the first await, so a burst cannot slip past.
        if self.admitted >= self.limits.max_concurrent + self.limits.max_queued:
            await self._say(request, chat_texts.BUSY)
            return "busy"
        user = request.sender_id or request.sender_staff_id or request.conversation_id
        if not self.rate.allow(user):
            await self._say(request, chat_texts.RATE_LIMITED)
            return "rate_limited"
        self.admitted += 1
        try:
            await self._say(request, chat_texts.PROGRESS)  # at once, even if it must queue
            queued = time.perf_counter()
            async with self._slots:
                timings["queue"] = time.perf_counter() - queued
                return await self._draw(request, timings)
        finally:
            self.admitted -= 1

    def _check(self, request: ImageRequest) -> tuple[str, str] | None:
        if request.message_type != "text":
            return "not_text", chat_texts.NOT_TEXT
        prompt = request.prompt
        if not prompt:
            return "empty", chat_texts.EMPTY
        if prompt.lower() in chat_texts.HELP_WORDS:
            return "help", chat_texts.HELP.format(days=self.limits.retention_days)
        if len(prompt) > self.limits.max_prompt_chars:
            return "too_long", chat_texts.TOO_LONG.format(
                length=len(prompt), limit=self.limits.max_prompt_chars
            )
        return None

    async def _draw(self, request: ImageRequest, timings: dict[str, float]) -> str:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.observer.in_flight(1)
        try:
            drawing = time.perf_counter()
            try:
                async with asyncio.timeout(self.limits.request_timeout):
                    published = await self.pipeline.draw(request.prompt)
            except (ImgbotError, TimeoutError) as exc:
                log.warning("msg %s: %s: %s", request.msg_id, type(exc).__name__, exc)
                await self._say(request, chat_texts.for_error(exc))
                return "failed"
            except asyncio.CancelledError:
                # Shutting down past the grace period: tell the user, briefly, then stop.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    async with asyncio.timeout(2):
                        await self._say(request, chat_texts.INTERRUPTED)
                raise
            timings["draw"] = time.perf_counter() - drawing
            mention = f"@{request.sender_staff_id}" if request.is_group else ""
            text = image_reply(published, request.prompt, mention)
            sent = time.perf_counter()
            channel = await self.sender.send(request, Message(text, TITLE))
            timings["reply"] = time.perf_counter() - sent
            self.observer.stage("reply", timings["reply"])
            log.info("msg %s: image %s sent via %s", request.msg_id, published.key, channel)
            return "image"
        finally:
            self.in_flight -= 1
            self.observer.in_flight(-1)

    async def _say(self, request: ImageRequest, text: str) -> None:
        if request.is_group and request.sender_staff_id:
            text = f"@{request.sender_staff_id} {text}"
        try:
            await self.sender.send(request, Message(text))
        except ReplyError as exc:
            log.warning("msg %s: could not send a text reply: %s", request.msg_id, exc)
