"""Answers one chat request: admits it through the state store, says it is working, and, as a
job, makes the picture and posts the one final reply.

Knows nothing of the DingTalk SDK: ``bot.py`` turns frames into ``ImageRequest`` values and the
bot calls ``Responder.respond`` (admission) in a tracked task; whichever worker claims the job
(``imgbot.jobs.worker``, in this process or another replica) calls ``work``. Counts go to the
observer (metrics) alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from imgbot.chat import texts as chat_texts
from imgbot.chat.markdown import EDIT_TITLE, TITLE, image_caption, image_reply
from imgbot.chat.refusals import refusal
from imgbot.config.settings import Settings
from imgbot.dingtalk.sender import Message, ReplySender
from imgbot.errors import ImgbotError, ReplyError
from imgbot.jobs.worker import ReplyFence, Worker, encode_request
from imgbot.models import ImageRequest, Published
from imgbot.observe import Observer
from imgbot.state import MESSAGE_CLAIM_SECONDS, StateStore, StoreUnavailable
from imgbot.studio.maker import Studio
from imgbot.studio.pipeline import Pipeline

log = logging.getLogger(__name__)
T = TypeVar("T")
RATE_WINDOW_SECONDS = 60.0


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
    """Turns requests into replies within the rules: admission here, the job's work in ``work``.

    Admission (message claim, rate, checks, ``submit``) runs in the process that got the message;
    ``work`` and ``give_up`` run in whichever worker claims the job (``imgbot.jobs.worker``).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        sender: ReplySender,
        rules: ChatRules,
        observer: Observer,
        store: StateStore,
        *,
        studio: Studio,
    ) -> None:
        self._studio = studio
        self._sender = sender
        self._rules = rules
        self._observer = observer
        self._store = store
        self._worker: Worker | None = None

    def attach(self, worker: Worker) -> None:
        """The worker that runs the jobs this responder admits."""
        self._worker = worker

    async def respond(self, request: ImageRequest) -> str:
        """Admit ``request``; return the outcome name. Never raises except on cancellation.

        An accepted request's outcome is counted when its job ends, by the worker that ran it.
        """
        outcome = "failed"
        try:
            outcome = await self._admit(request)
        except StoreUnavailable as exc:
            # Nothing was accepted: one short answer, so the user is never left in silence.
            self._observer.store_failed()
            log.warning("msg %s: state store unavailable: %s", request.msg_id, exc)
            await self._say(request, chat_texts.STORE_DOWN)
            outcome = "store_down"
        except ImgbotError as exc:
            log.warning("msg %s: reply failed: %s", request.msg_id, exc)
        except Exception:
            log.exception("msg %s: unexpected error", request.msg_id)
        if outcome != "accepted":
            self._observer.outcome(outcome)
        log.info("msg %s: admission=%s", request.msg_id, outcome)
        return outcome

    async def _admit(self, request: ImageRequest) -> str:
        worker = self._worker
        assert worker is not None, "attach() a worker first"  # noqa: S101 (wiring, not input)
        # The store's first claim wins across replicas (DingTalk redelivers, maybe elsewhere).
        if not await self._store.claim_message(request.msg_id, MESSAGE_CLAIM_SECONDS):
            log.info("msg %s: already claimed; duplicate delivery ignored", request.msg_id)
            return "duplicate"
        # Every message counts against its sender's rate, refusals too: a script cannot make the
        # bot answer without end. Past the limit the sender is told once per window.
        user = request.sender_id or request.sender_staff_id or request.conversation_id
        verdict = await self._store.rate(user, self._rules.requests_per_minute, RATE_WINDOW_SECONDS)
        self._observer.store_answered()
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
        return await self._submit(request, worker)

    async def _submit(self, request: ImageRequest, worker: Worker) -> str:
        # A free local slot claims the job at once (one process behaves as before: it draws now);
        # otherwise it waits in the store for any replica's worker, up to MAX_QUEUED_REQUESTS.
        slot = worker.reserve()
        try:
            result = await self._store.submit(
                request.msg_id,
                encode_request(request),
                max_waiting=self._rules.max_queued,
                claim_for=worker.name if slot else None,
                lease_seconds=worker.lease_seconds,
            )
        except BaseException:
            if slot:
                worker.release()
            raise
        if isinstance(result, str) and slot:
            worker.release()
        if result == "busy":
            await self._say(request, chat_texts.BUSY)
            return "busy"
        if result == "known":
            return "duplicate"
        # Accepted: the job is durable now. The progress reply goes first, so a picture drawn in
        # an instant still follows it; a job claimed here heart-beats meanwhile.
        progress = self._say(request, chat_texts.PROGRESS)
        if result == "waiting":
            await progress
            worker.wake()
        else:
            worker.start(result, first=progress)
        return "accepted"

    async def work(self, request: ImageRequest, fence: ReplyFence) -> None:
        """A job's work: make the picture, then post the one final reply through ``fence``."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        outcome = "failed"
        try:
            outcome = await self._draw(request, fence, timings)
        except ImgbotError as exc:
            log.warning("msg %s: reply failed: %s", request.msg_id, exc)
        except Exception:
            log.exception("msg %s: unexpected error", request.msg_id)
        self._observer.outcome(outcome)
        stages = " ".join(f"{name}={seconds:.3f}s" for name, seconds in timings.items())
        log.info(
            "msg %s: outcome=%s attempt=%d %s total=%.3fs",
            request.msg_id,
            outcome,
            fence.attempt,
            stages,
            time.perf_counter() - started,
        )

    async def give_up(self, request: ImageRequest, fence: ReplyFence) -> None:
        """A job started too often (its workers kept dying): tell the user it failed."""
        await self._final(fence, self._say(request, chat_texts.GAVE_UP))
        self._observer.outcome("gave_up")
        log.warning("msg %s: outcome=gave_up attempt=%d", request.msg_id, fence.attempt)

    def _check(self, request: ImageRequest) -> tuple[str, str] | None:
        refused = refusal(
            request,
            can_edit=self._studio.can_edit,
            max_prompt_chars=self._rules.max_prompt_chars,
            retention_days=self._rules.retention_days,
        )
        return None if refused is None else (refused.outcome, refused.text)

    async def _make(self, request: ImageRequest) -> Published:
        """What a job makes of its request: the one place that chooses the pipeline's work."""
        return await self._studio.make(request)

    async def _draw(
        self, request: ImageRequest, fence: ReplyFence, timings: dict[str, float]
    ) -> str:
        self._observer.in_flight(1)
        try:
            drawing = time.perf_counter()
            try:
                async with asyncio.timeout(self._rules.request_timeout):
                    published = await self._make(request)
            except (ImgbotError, TimeoutError) as exc:
                log.warning("msg %s: %s: %s", request.msg_id, type(exc).__name__, exc)
                posted = await self._final(fence, self._say(request, chat_texts.for_error(exc)))
                return "superseded" if posted is None else "failed"
            except Exception:
                # A bug must still end in an answer, never in the progress sentence alone.
                log.exception("msg %s: unexpected error while drawing", request.msg_id)
                posted = await self._final(fence, self._say(request, chat_texts.FAILED))
                return "superseded" if posted is None else "failed"
            timings["draw"] = time.perf_counter() - drawing
            sent = time.perf_counter()
            channel = await self._final(fence, self._deliver(request, published))
            if channel is None:
                log.info(
                    "msg %s: another worker owns the reply; image %s unused",
                    request.msg_id,
                    published.key,
                )
                return "superseded"
            timings["reply"] = time.perf_counter() - sent
            self._observer.stage("reply", timings["reply"])
            log.info("msg %s: image %s sent via %s", request.msg_id, published.key, channel)
            return "image"
        finally:
            self._observer.in_flight(-1)

    async def _final(self, fence: ReplyFence, reply: Coroutine[Any, Any, T]) -> T | None:
        """Post the job's final reply only if the fence allows it, then record it; None if not."""
        if not await fence.begin():
            reply.close()
            return None
        try:
            return await reply
        finally:
            await fence.finish()

    async def _deliver(self, request: ImageRequest, published: Published) -> str:
        """Send the picture as REPLY_STYLE says; a refused native image falls back to Markdown."""
        mention = _mention(request)
        title = EDIT_TITLE if request.picture is not None else TITLE
        if self._rules.reply_style == "image":
            try:
                await self._sender.send(request, Message.image(published.preview_link.url))
            except ReplyError as exc:
                if not exc.maybe_delivered:
                    log.warning(
                        "msg %s: native image refused (%s); sending Markdown", request.msg_id, exc
                    )
                    text = image_reply(published, request.prompt, mention, title)
                    return await self._sender.send(request, Message.markdown(title, text))
                # It may have arrived: another picture would be a duplicate; the caption follows.
                log.warning("msg %s: native image unconfirmed (%s)", request.msg_id, exc)
            caption = image_caption(published, request.prompt, mention, title)
            await self._sender.send(request, Message.markdown(title, caption))
            return "robot image"
        text = image_reply(published, request.prompt, mention, title)
        return await self._sender.send(request, Message.markdown(title, text))

    async def _say(self, request: ImageRequest, text: str) -> bool:
        """Send a short text; False (logged) when it could not be sent."""
        mention = _mention(request)
        if mention:
            text = f"{mention} {text}"
        try:
            await self._sender.send(request, Message.plain(text))
        except ReplyError as exc:
            log.warning("msg %s: could not send a text reply: %s", request.msg_id, exc)
            return False
        return True


def _mention(request: ImageRequest) -> str:
    """``@staffId`` for group replies when DingTalk gave the sender's staff id, else nothing."""
    return f"@{request.sender_staff_id}" if request.is_group and request.sender_staff_id else ""
