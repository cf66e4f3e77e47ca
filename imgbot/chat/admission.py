"""Admission: whether a chat request becomes a job, decided through the shared state store.

For each parsed request, in order: the store's message claim (the first claim wins across
replicas: DingTalk redelivers, maybe to another replica), the sender's rate, the refusals that
are answered with one sentence, 「我的图片」 (answered at once from the store's index), the
blocked words (BLOCKED_WORDS_FILE: refused before any provider call), then the pictures the words
ask for (each counted against the sender's rate, and given back when ``submit`` does not accept
the job: busy, or known already) and ``submit`` of a durable job. An accepted
request gets the progress sentence (its card in the card style); its job then runs in this
process's worker (a slot was free) or waits in the store for any replica's worker. The job's work is
``imgbot.jobs.image_job``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Literal

from imgbot.chat.blocked_words import BlockedWords
from imgbot.chat.prompts import folded
from imgbot.chat.refusals import refusal
from imgbot.config.settings import Settings
from imgbot.delivery import texts
from imgbot.delivery.replies import Replies
from imgbot.errors import ImgbotError
from imgbot.jobs.payload import encode_request
from imgbot.jobs.worker import Worker
from imgbot.models import ImageRequest, Outcome
from imgbot.observe import Observer
from imgbot.state import MESSAGE_CLAIM_SECONDS, StateStore, StoreUnavailable
from imgbot.studio.gallery import Gallery

log = logging.getLogger(__name__)
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    """What the bot accepts from chat and how much of it."""

    max_prompt_chars: int
    max_queued: int
    requests_per_minute: int
    retention_days: int
    max_images: int
    """MAX_IMAGES_PER_REQUEST: the most pictures one message makes."""
    can_edit: bool
    """The configured generator can edit pictures (else requests with one are refused)."""

    @classmethod
    def from_settings(cls, settings: Settings, *, can_edit: bool) -> AdmissionRules:
        """The rules named in settings."""
        return cls(
            max_prompt_chars=settings.max_prompt_chars,
            max_queued=settings.max_queued_requests,
            requests_per_minute=settings.user_requests_per_minute,
            retention_days=settings.image_retention_days,
            max_images=settings.max_images_per_request,
            can_edit=can_edit,
        )


class Admission:
    """Turns requests into jobs within the rules, or into one sentence."""

    def __init__(
        self,
        store: StateStore,
        worker: Worker,
        replies: Replies,
        rules: AdmissionRules,
        observer: Observer,
        *,
        gallery: Gallery,
        blocked_words: BlockedWords | None = None,
    ) -> None:
        self._store = store
        self._worker = worker
        self._replies = replies
        self._rules = rules
        self._observer = observer
        self._gallery = gallery
        self._blocked_words = blocked_words

    async def admit(self, request: ImageRequest) -> Outcome:
        """Admit ``request``; return its outcome. Never raises except on cancellation.

        An accepted request's final outcome is counted when its job ends, by the worker that
        ran it.
        """
        outcome = Outcome.FAILED
        try:
            outcome = await self._admit(request)
        except StoreUnavailable as exc:
            # Nothing was accepted: one short answer, so the user is never left in silence.
            self._observer.store_failed()
            log.warning("msg %s: state store unavailable: %s", request.msg_id, exc)
            await self._replies.say(request, texts.STORE_DOWN)
            outcome = Outcome.STORE_DOWN
        except ImgbotError as exc:
            log.warning("msg %s: reply failed: %s", request.msg_id, exc)
        except Exception:
            log.exception("msg %s: unexpected error", request.msg_id)
        if outcome != Outcome.ACCEPTED:
            self._observer.outcome(outcome)
        log.info("msg %s: admission=%s", request.msg_id, outcome)
        return outcome

    async def _admit(self, request: ImageRequest) -> Outcome:
        if not await self._store.claim_message(request.msg_id, MESSAGE_CLAIM_SECONDS):
            log.info("msg %s: already claimed; duplicate delivery ignored", request.msg_id)
            return Outcome.DUPLICATE
        # Every message counts against its sender's rate, refusals too: a script cannot make the
        # bot answer without end. Past the limit the sender is told once per window.
        verdict = await self._store.rate(
            request.sender, self._rules.requests_per_minute, RATE_WINDOW_SECONDS
        )
        self._observer.store_answered()
        if verdict == "quiet":
            return Outcome.RATE_LIMITED_QUIET
        if verdict == "tell":
            await self._replies.say(request, texts.RATE_LIMITED)
            return Outcome.RATE_LIMITED
        answered = await self._answered_now(request)
        return (
            answered if answered is not None else await self._submit(await self._counted(request))
        )

    async def _answered_now(self, request: ImageRequest) -> Outcome | None:
        """Answer what needs no job (refusals, 「我的图片」, blocked words); None otherwise."""
        refused = refusal(
            request,
            can_edit=self._rules.can_edit,
            max_prompt_chars=self._rules.max_prompt_chars,
            retention_days=self._rules.retention_days,
        )
        if refused is not None:
            await self._replies.say(request, refused.text)
            return refused.outcome
        if asks_for_recent(request):
            return await self._recent(request)
        if self._blocked_words is not None and await self._blocked_words.refuses(request.prompt):
            # The words are not logged: the log would then hold what the list is there to keep out.
            log.info("msg %s: the prompt holds a blocked word; refused", request.msg_id)
            await self._replies.say(request, texts.MODERATED)
            return Outcome.MODERATED
        return None

    async def _recent(self, request: ImageRequest) -> Outcome:
        """Answer 「我的图片」 with the sender's recent pictures in this conversation."""
        images = await self._gallery.recent(request)
        if not images:
            await self._replies.say(
                request, texts.MY_IMAGES_EMPTY.format(days=self._rules.retention_days)
            )
        else:
            await self._replies.recent(request, images)
        log.info("msg %s: listed %d recent picture(s)", request.msg_id, len(images))
        return Outcome.MY_IMAGES

    async def _counted(self, request: ImageRequest) -> ImageRequest:
        """``request`` with the pictures it will make: what its words ask for, at most
        MAX_IMAGES_PER_REQUEST, each past the first counted against the sender's rate (the
        first was counted with the message) and only as many as the rate leaves."""
        wanted = min(request.asked, self._rules.max_images)
        if wanted <= 1 and request.asked <= 1:
            return request
        extra = 0
        if wanted > 1:
            extra = await self._store.rate_extra(
                request.sender, wanted - 1, self._rules.requests_per_minute, RATE_WINDOW_SECONDS
            )
        count = 1 + extra
        fewer: Literal["", "max", "rate"] = ""
        if count < wanted:
            fewer = "rate"
        elif count < request.asked:
            fewer = "max"
        log.info(
            "msg %s: %d picture(s) asked, %d to make%s",
            request.msg_id,
            request.asked,
            count,
            f" (limited by {fewer})" if fewer else "",
        )
        return replace(request, count=count, fewer_because=fewer)

    async def _submit(self, request: ImageRequest) -> Outcome:
        # A free local slot claims the job at once (one process behaves as before: it draws now);
        # otherwise it waits in the store for any replica's worker, up to MAX_QUEUED_REQUESTS.
        worker = self._worker
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
        if isinstance(result, str):
            if slot:
                worker.release()
            if request.count > 1:
                # Not accepted: the extra pictures counted against the sender's rate are not made.
                await self._store.rate_give_back(request.sender, request.count - 1)
            if result == "busy":
                await self._replies.say(request, texts.BUSY)
                return Outcome.BUSY
            if result == "known":
                return Outcome.DUPLICATE
        # Accepted: the job is durable now. The progress sentence goes first, so a picture drawn
        # in an instant still follows it; a job claimed here starts after it, whatever happens to
        # the sentence. Its lease runs without a heartbeat meanwhile, so the sentence gets a third
        # of the lease at most: it is a courtesy, and the final answer follows in any case.
        try:
            async with asyncio.timeout(worker.lease_seconds / 3):
                place = await self._place() if isinstance(result, str) else None
                await self._replies.progress(request, place)
        except TimeoutError:
            log.warning("msg %s: progress sentence still unsent; drawing now", request.msg_id)
        finally:
            if isinstance(result, str):
                worker.wake()
            else:
                worker.start(result)
        return Outcome.ACCEPTED

    async def _place(self) -> int | None:
        """A waiting job's place in the queue, when the replies show it (the card style); None
        when they do not or the store cannot say."""
        if not self._replies.shows_queue_place:
            return None
        try:
            return await self._store.waiting()
        except StoreUnavailable:
            return None


def asks_for_recent(request: ImageRequest) -> bool:
    """True when the whole message asks for the sender's recent pictures (「我的图片」)."""
    if request.picture is not None or request.message_type not in ("text", "richText"):
        return False
    return folded(request.prompt).rstrip("?!.。~ ") in texts.MY_IMAGES_WORDS
