"""Answers one chat request: checks it, says it is working, runs the pipeline, replies.

Knows nothing of the DingTalk SDK: ``bot.py`` turns frames into ``ImageRequest`` values and the
bot calls ``Responder.respond`` in a tracked task. Counts go to the observer (metrics) alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from imgbot import chat_texts
from imgbot.config import Settings
from imgbot.errors import ImgbotError, ReplyError
from imgbot.guards import RateLimiter
from imgbot.markdown import TITLE, image_caption, image_reply
from imgbot.models import ImageRequest, Published
from imgbot.observe import Observer
from imgbot.pipeline import Pipeline
from imgbot.reply import Message, ReplySender
from imgbot.studio import NoPictures, Studio

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChatRules:
    """What the bot accepts from chat and how much of it: the admission rules of one process."""

    max_prompt_chars: int
    max_concurrent: int
    max_queued: int
    requests_per_minute: int
    request_timeout: float
    retention_days: int
    reply_style: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatRules:
        """The rules named in settings."""
        return cls(
            max_prompt_chars=settings.max_prompt_chars,
            max_concurrent=settings.max_concurrent_generations,
            max_queued=settings.max_queued_requests,
            requests_per_minute=settings.user_requests_per_minute,
            request_timeout=settings.request_timeout_seconds,
            retention_days=settings.image_retention_days,
            reply_style=settings.reply_style,
        )


class Responder:
    """Turns requests into replies within the rules."""

    def __init__(
        self,
        pipeline: Pipeline,
        sender: ReplySender,
        rules: ChatRules,
        observer: Observer,
        *,
        studio: Studio | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._studio = studio or Studio(pipeline, NoPictures())
        self._sender = sender
        self._rules = rules
        self._observer = observer
        self._rate = RateLimiter(rules.requests_per_minute)
        self._slots = asyncio.Semaphore(rules.max_concurrent)
        self._admitted = 0  # requests past admission: drawing or waiting for a slot

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
        self._observer.outcome(outcome)
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
        # Every message counts against its sender's rate, refusals too: a script cannot make the
        # bot answer without end. Past the limit the sender is told once per window.
        user = request.sender_id or request.sender_staff_id or request.conversation_id
        verdict = self._rate.check(user)
        if verdict == "quiet":
            return "rate_limited_quiet"
        if verdict == "tell":
            await self._say(request, chat_texts.RATE_LIMITED)
            return "rate_limited"
        refusal = self._check(request)
        if refusal is not None:
            outcome, text = refusal
            await self._say(request, text)
            return outcome
        # Admission is decided and counted before the first await, so a burst cannot slip past.
        if self._admitted >= self._rules.max_concurrent + self._rules.max_queued:
            await self._say(request, chat_texts.BUSY)
            return "busy"
        self._admitted += 1
        try:
            await self._say(request, chat_texts.PROGRESS)  # at once, even if it must queue
            queued = time.perf_counter()
            async with self._slots:
                timings["queue"] = time.perf_counter() - queued
                return await self._draw(request, timings)
        except asyncio.CancelledError:
            # Shutting down past the grace period, drawing or still queued: tell the user, briefly.
            self._observer.outcome("interrupted")
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(2):
                    await self._say(request, chat_texts.INTERRUPTED)
            raise
        finally:
            self._admitted -= 1

    def _check(self, request: ImageRequest) -> tuple[str, str] | None:
        refusal = self._studio.refusal(request)  # pictures: alone, unreadable, no instruction
        if refusal is not None:
            return refusal
        if request.message_type not in ("text", "richText"):
            return "not_text", chat_texts.NOT_TEXT
        prompt = request.prompt
        if not prompt:
            return "empty", chat_texts.EMPTY
        if prompt.lower() in chat_texts.HELP_WORDS:
            return "help", chat_texts.HELP.format(days=self._rules.retention_days)
        if len(prompt) > self._rules.max_prompt_chars:
            return "too_long", chat_texts.TOO_LONG.format(
                length=len(prompt), limit=self._rules.max_prompt_chars
            )
        return None

    async def _draw(self, request: ImageRequest, timings: dict[str, float]) -> str:
        self._observer.in_flight(1)
        try:
            drawing = time.perf_counter()
            try:
                async with asyncio.timeout(self._rules.request_timeout):
                    published = await self._studio.make(request)
            except (ImgbotError, TimeoutError) as exc:
                log.warning("msg %s: %s: %s", request.msg_id, type(exc).__name__, exc)
                await self._say(request, chat_texts.for_error(exc))
                return "failed"
            except Exception:
                # A bug must still end in an answer, never in the progress sentence alone.
                log.exception("msg %s: unexpected error while drawing", request.msg_id)
                await self._say(request, chat_texts.FAILED)
                return "failed"
            timings["draw"] = time.perf_counter() - drawing
            sent = time.perf_counter()
            channel = await self._deliver(request, published)
            timings["reply"] = time.perf_counter() - sent
            self._observer.stage("reply", timings["reply"])
            log.info("msg %s: image %s sent via %s", request.msg_id, published.key, channel)
            return "image"
        finally:
            self._observer.in_flight(-1)

    async def _deliver(self, request: ImageRequest, published: Published) -> str:
        """Send the picture as REPLY_STYLE says; a refused native image falls back to Markdown."""
        mention = _mention(request)
        if self._rules.reply_style == "image":
            try:
                await self._sender.send(request, Message.image(published.preview_link.url))
            except ReplyError as exc:
                if not exc.maybe_delivered:
                    log.warning(
                        "msg %s: native image refused (%s); sending Markdown", request.msg_id, exc
                    )
                    text = image_reply(published, request.prompt, mention)
                    return await self._sender.send(request, Message.markdown(TITLE, text))
                # It may have arrived: another picture would be a duplicate; the caption follows.
                log.warning("msg %s: native image unconfirmed (%s)", request.msg_id, exc)
            caption = image_caption(published, request.prompt, mention)
            await self._sender.send(request, Message.markdown(TITLE, caption))
            return "robot image"
        text = image_reply(published, request.prompt, mention)
        return await self._sender.send(request, Message.markdown(TITLE, text))

    async def _say(self, request: ImageRequest, text: str) -> None:
        mention = _mention(request)
        if mention:
            text = f"{mention} {text}"
        try:
            await self._sender.send(request, Message.plain(text))
        except ReplyError as exc:
            log.warning("msg %s: could not send a text reply: %s", request.msg_id, exc)


def _mention(request: ImageRequest) -> str:
    """``@staffId`` for group replies when DingTalk gave the sender's staff id, else nothing."""
    return f"@{request.sender_staff_id}" if request.is_group and request.sender_staff_id else ""
