"""A job's work: make the picture its request asks for, then post the one final answer.

The worker (``imgbot.jobs.worker``) runs ``ImageJob.work`` for each job it claims, in whichever
replica claimed it, and ``give_up`` for a job claimed too often. The picture comes from the studio
within REQUEST_TIMEOUT_SECONDS; the answer (the picture, or one sentence for what went wrong) goes
through the job's fence, so only the current claim of an unfinished job posts it. A picture
posted joins its sender's recent pictures in that conversation (「我的图片」, ``Gallery``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing

from imgbot.delivery import texts
from imgbot.delivery.replies import Replies
from imgbot.errors import GeneratorError, ImgbotError
from imgbot.jobs.payload import decode_request
from imgbot.jobs.worker import ReplyFence
from imgbot.models import ImageRequest, Outcome, Published
from imgbot.objects.keys import key_label
from imgbot.observe import Observer
from imgbot.state import StoreUnavailable
from imgbot.studio.gallery import Gallery
from imgbot.studio.maker import Studio

log = logging.getLogger(__name__)


class ImageJob:
    """Draws or edits for one job's request and answers it, within the request timeout."""

    def __init__(
        self,
        studio: Studio,
        replies: Replies,
        gallery: Gallery,
        *,
        request_timeout: float,
        observer: Observer,
    ) -> None:
        self._studio = studio
        self._replies = replies
        self._gallery = gallery
        self._timeout = request_timeout
        self._observer = observer

    async def work(self, payload: str, fence: ReplyFence) -> None:
        """Make the picture and post the final answer through ``fence``; never raises."""
        request = await _request(payload, fence)
        if request is None:
            return
        started = time.perf_counter()
        timings: dict[str, float] = {}
        outcome = Outcome.FAILED
        try:
            outcome = await self._answer(request, fence, timings)
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

    async def give_up(self, payload: str, fence: ReplyFence) -> None:
        """A job started too often (its workers kept dying): tell the user it failed."""
        request = await _request(payload, fence)
        if request is None:
            return
        await fence.post(self._replies.answer(request, texts.GAVE_UP))
        self._observer.outcome(Outcome.GAVE_UP)
        log.warning("msg %s: outcome=gave_up attempt=%d", request.msg_id, fence.attempt)

    async def _answer(
        self, request: ImageRequest, fence: ReplyFence, timings: dict[str, float]
    ) -> Outcome:
        self._observer.in_flight(1)
        try:
            drawing = time.perf_counter()
            made: list[Published] = []
            refused = False
            try:
                async with asyncio.timeout(self._timeout):
                    await asyncio.gather(
                        self._collect(request, made), self._replies.started(request)
                    )
            except (ImgbotError, TimeoutError) as exc:
                log.warning("msg %s: %s: %s", request.msg_id, type(exc).__name__, exc)
                refused = isinstance(exc, GeneratorError) and exc.moderated
                if not made:
                    outcome = Outcome.MODERATED if refused else Outcome.FAILED
                    return await self._sorry(request, fence, texts.for_error(exc), outcome)
            except Exception:
                # A bug must still end in an answer, never in the progress sentence alone.
                log.exception("msg %s: unexpected error while drawing", request.msg_id)
                if not made:
                    return await self._sorry(request, fence, texts.FAILED)
            timings["draw"] = time.perf_counter() - drawing
            sent = time.perf_counter()
            note = shortfall(request, len(made), refused=refused)
            if len(made) == 1 and not note:
                answer = self._replies.picture(request, made[0])
            else:
                answer = self._replies.pictures(request, made, note)
            channel = await fence.post(answer)
            published = made[0]
            if channel is None:
                log.info(
                    "msg %s: another worker owns the reply; %d image(s) from %s unused",
                    request.msg_id,
                    len(made),
                    key_label(published.key),
                )
                return Outcome.SUPERSEDED
            timings["reply"] = time.perf_counter() - sent
            self._observer.stage("reply", timings["reply"])
            log.info(
                "msg %s: %d image(s) from %s sent via %s",
                request.msg_id,
                len(made),
                key_label(published.key),
                channel,
            )
            for picture in made:
                await self._remember(request, picture)
            # Some pictures made, the rest refused for their content: the message ended in a
            # refusal, and is counted so (its pictures were posted all the same).
            return Outcome.MODERATED if refused else Outcome.IMAGE
        finally:
            self._observer.in_flight(-1)

    async def _collect(self, request: ImageRequest, made: list[Published]) -> None:
        """Gather the request's pictures into ``made`` as the studio makes them."""
        async with aclosing(self._studio.make_all(request)) as pictures:
            async for published in pictures:
                made.append(published)

    async def _remember(self, request: ImageRequest, published: Published) -> None:
        """Add the posted picture to the sender's recent ones; a store that does not answer
        costs only that entry."""
        try:
            await self._gallery.record(request, published)
        except StoreUnavailable as exc:
            log.warning(
                "msg %s: image %s not added to the recent pictures: %s",
                request.msg_id,
                key_label(published.key),
                exc,
            )

    async def _sorry(
        self, request: ImageRequest, fence: ReplyFence, text: str, outcome: Outcome = Outcome.FAILED
    ) -> Outcome:
        """Post one sentence as the final answer: ``outcome``, or superseded when the fence
        refused."""
        posted = await fence.post(self._replies.answer(request, text))
        return Outcome.SUPERSEDED if posted is None else outcome


def shortfall(request: ImageRequest, made: int, *, refused: bool = False) -> str:
    """Why the answer holds fewer pictures than the words asked for ("" when it does not);
    ``refused``: the missing ones were refused for their content (asking again will not help)."""
    notes = []
    if request.fewer_because == "max":
        notes.append(texts.FEWER_MAX.format(count=request.count))
    elif request.fewer_because == "rate":
        notes.append(texts.FEWER_RATE.format(count=request.count))
    if made < request.count:
        missing = texts.SOME_REFUSED if refused else texts.SOME_MISSING
        notes.append(missing.format(missing=request.count - made))
    return "".join(notes)


async def _request(payload: str, fence: ReplyFence) -> ImageRequest | None:
    """The job's request; None (the job recorded as finished, nothing posted) when unreadable."""
    try:
        return decode_request(payload)
    except ValueError as exc:
        log.error("job %s: unreadable payload (%s); dropped", fence.job_id, exc)
        await fence.finish()
        return None
