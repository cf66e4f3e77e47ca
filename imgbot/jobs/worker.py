"""The job worker of one bot process: runs durable jobs in its local generation slots.

A job reaches a worker two ways: ``submit`` claimed it for us at admission (a slot was free), or
the claim loop took it from the store (a waiting job, or one whose worker stopped heart-beating
for the lease: another replica that died, or this bot before a restart). While a job runs, its
lease is renewed every third of it; a renewal the store refuses means the job was reclaimed, and
this worker's work on it is cancelled. The final reply is fenced (``ReplyFence``): only the
current claim of an unfinished job posts it, and the job is then recorded as finished.

When the store cannot be reached the work goes on: heartbeats are retried at their next tick,
and the fence is retried within the lease (``imgbot.net.retry``); if it still cannot be reached the
reply is posted anyway, since a possible second image is better than a lost one (RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from imgbot.config.settings import Settings
from imgbot.jobs.task_tracker import TaskTracker
from imgbot.net import retry
from imgbot.observe import Observer
from imgbot.state import Job, StateStore, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_POLL_SECONDS = 1.0
"""The claim loop looks for waiting jobs at least this often (sooner when this process submits
one or frees a slot), so another replica's queue is drained within about a second."""


def worker_name() -> str:
    """A name no other worker has: host, process and a random part (a restart is a new worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class JobRules:
    """How jobs run in one process."""

    slots: int
    """MAX_CONCURRENT_GENERATIONS: jobs this process runs at once."""
    lease_seconds: float
    """REQUEST_RECLAIM_SECONDS."""
    max_attempts: int
    """REQUEST_MAX_ATTEMPTS: claims of one job before the user is told it failed."""

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRules:
        """The rules named in settings."""
        return cls(
            slots=settings.max_concurrent_generations,
            lease_seconds=settings.request_reclaim_seconds,
            max_attempts=settings.request_max_attempts,
        )

    @property
    def poll_seconds(self) -> float:
        """How long the claim loop waits between looks at the store when nothing wakes it."""
        return min(MAX_POLL_SECONDS, self.lease_seconds / 4)


class ReplyFence:
    """The final reply of one job: ``begin`` before posting it, ``finish`` after."""

    def __init__(self, store: StateStore, job: Job, lease: float, observer: Observer) -> None:
        self._store = store
        self._job = job
        self._lease = lease
        self._observer = observer
        self.passed = False
        """True once ``begin`` allowed the reply: from then on the reply is posted, whatever."""

    @property
    def job_id(self) -> str:
        """The job's id (the message's msgId)."""
        return self._job.id

    @property
    def attempt(self) -> int:
        """1 for the job's first claim, more after reclaims."""
        return self._job.attempt

    async def begin(self) -> bool:
        """True when this worker may post the final reply; False when another claim owns it.

        A store that does not answer within half the lease counts as True: the reply is posted.
        """
        try:
            allowed = await self._call(
                lambda: self._store.begin_reply(self._job, self._lease), self._lease / 2, "begin"
            )
        except StoreUnavailable as exc:
            log.warning(
                "job %s: store unreachable before the reply (%s); posting", self._job.id, exc
            )
            allowed = True
        self.passed = allowed
        return allowed

    async def finish(self) -> None:
        """Record that the final reply was sent; a store that does not answer is logged.

        Retried for three leases: the lease may run out while the store is down, but the job's
        record of being finished stops a reclaiming worker at its own fence, so arriving late
        still prevents a second reply.
        """
        try:
            await self._call(lambda: self._store.finish(self._job), self._lease * 3, "finish")
        except StoreUnavailable as exc:
            log.error(
                "job %s: could not record its reply (%s); it may be answered again",
                self._job.id,
                exc,
            )

    async def post(self, reply: Coroutine[Any, Any, T]) -> T | None:
        """Post the job's final ``reply`` only if ``begin`` allows it, then ``finish``; None (and
        ``reply`` never started) when another claim owns the reply."""
        if not await self.begin():
            reply.close()
            return None
        try:
            return await reply
        finally:
            await self.finish()

    async def _call(self, once: Callable[[], Awaitable[T]], within: float, what: str) -> T:
        async def attempt() -> T:
            try:
                result = await once()
            except StoreUnavailable:
                self._observer.store_failed()
                raise
            self._observer.store_answered()
            return result

        policy = retry.RetryPolicy(attempts=None, timeout=within, initial_wait=0.2, max_wait=2.0)
        return await retry.call(
            attempt,
            policy=policy,
            retry_on=lambda exc: isinstance(exc, StoreUnavailable),
            what=f"store {what}",
            observer=self._observer,
        )


JobWork = Callable[[str, ReplyFence], Awaitable[None]]
"""What a job does with its payload (for imgbot: ``ImageJob.work``); never raises."""


class Worker:
    """Runs this process's jobs in ``rules.slots`` local slots, claiming more when one is free."""

    def __init__(
        self,
        store: StateStore,
        rules: JobRules,
        *,
        work: JobWork,
        give_up: JobWork,
        tracker: TaskTracker,
        observer: Observer,
        name: str | None = None,
    ) -> None:
        self.name = name or worker_name()
        self._store = store
        self._rules = rules
        self._work = work
        self._give_up = give_up
        self._tracker = tracker
        self._observer = observer
        self._free = rules.slots
        self._wake = asyncio.Event()

    @property
    def lease_seconds(self) -> float:
        """The lease of each claim (REQUEST_RECLAIM_SECONDS)."""
        return self._rules.lease_seconds

    def reserve(self) -> bool:
        """Take a free local slot if there is one; then ``start`` a job in it or ``release`` it."""
        if self._free == 0:
            return False
        self._free -= 1
        return True

    def release(self) -> None:
        """Give back a reserved slot that was not used."""
        self._free += 1
        self._wake.set()

    def wake(self) -> None:
        """A job was just submitted to wait: look for it now rather than at the next poll."""
        self._wake.set()

    def start(self, job: Job) -> None:
        """Run ``job`` (claimed for us) in the slot reserved for it, as a tracked task."""
        self._tracker.track(self._run(job))

    async def run(self) -> None:
        """Claim jobs while a slot is free, until cancelled."""
        while True:
            if not self.reserve():
                await self._sleep(None)
                continue
            try:
                job = await self._store.claim(self.name, self._rules.lease_seconds)
            except StoreUnavailable as exc:
                self._free += 1  # not release(): that would wake this loop at once
                self._observer.store_failed()
                log.debug("claim: store unreachable (%s)", exc)
                await self._sleep(self._rules.poll_seconds)
                continue
            except BaseException:
                self._free += 1
                raise
            self._observer.store_answered()
            if job is None:
                self._free += 1
                await self._sleep(self._rules.poll_seconds)
                continue
            log.info("job %s: claimed (attempt %d)", job.id, job.attempt)
            self.start(job)

    async def _sleep(self, seconds: float | None) -> None:
        """Until woken (a slot freed, a job submitted) or ``seconds`` passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _run(self, job: Job) -> None:
        fence = ReplyFence(self._store, job, self._rules.lease_seconds, self._observer)
        try:
            await self._supervise(job, fence)
        finally:
            self.release()

    async def _supervise(self, job: Job, fence: ReplyFence) -> None:
        does = self._give_up if job.attempt > self._rules.max_attempts else self._work
        work = asyncio.ensure_future(does(job.payload, fence))
        beat = asyncio.ensure_future(self._heartbeat(job, work, fence))
        try:
            await asyncio.wait({work})
        except asyncio.CancelledError:
            # Shutting down past the grace period: the job stays claimed, and once its lease runs
            # out another worker (or this bot restarted) finishes it; the user hears nothing now.
            work.cancel()
            await asyncio.wait({work}, timeout=3)
            raise
        finally:
            beat.cancel()
        if work.cancelled():
            log.warning("job %s: lease lost to another worker; stopped here", job.id)
        elif work.exception() is not None:
            log.error("job %s: failed unexpectedly", job.id, exc_info=work.exception())

    async def _heartbeat(self, job: Job, work: asyncio.Future[None], fence: ReplyFence) -> None:
        while not work.done():
            await asyncio.sleep(self._rules.lease_seconds / 3)
            try:
                ours = await self._store.heartbeat(job, self._rules.lease_seconds)
            except StoreUnavailable as exc:
                self._observer.store_failed()
                log.warning("job %s: heartbeat: store unreachable (%s)", job.id, exc)
                continue
            self._observer.store_answered()
            if not ours:
                if not fence.passed:  # past the fence the reply is on its way: let it go
                    work.cancel()
                return
