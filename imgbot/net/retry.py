"""The one retry and backoff policy: what to retry, caps on attempts and total time, jittered waits.

Every retry in imgbot goes through here (generators, replies, the stream reconnect loop); only
this module configures tenacity. A policy says how often and how long; the caller says which
errors are worth another attempt. The on-retry hook (a log line and the metrics observer) runs
here, once, for every caller. Nothing sleeps after the final attempt, and a wait that would end
past the total cap is not started: the last error is raised instead.

A failure may ask for a longer wait (HTTP ``Retry-After``) by carrying a ``retry_after`` attribute
in seconds; the wait is then the longer of that (bounded by ``max_wait``) and the backoff.

Tests switch waits off at run time with ``set_testing(True)``; the waits that would have been
slept are recorded in ``testing_waits`` so a test can assert the backoff exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    stop_never,
)
from tenacity.stop import stop_base

from imgbot.errors import ImgbotError
from imgbot.observe import Observer

log = logging.getLogger(__name__)
T = TypeVar("T")

_testing = False
testing_waits: list[float] = []
"""Waits requested while testing is on, in order (seconds), instead of sleeping."""


def set_testing(on: bool) -> None:
    """Remove every wait (and start recording them) or restore real waits."""
    global _testing  # noqa: PLW0603 (one process-wide switch, as stamina has)
    _testing = on
    testing_waits.clear()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and for how long one kind of call is retried.

    ``attempts`` and ``timeout`` (seconds, all attempts and waits together) are both caps;
    ``None`` means unbounded, which only the stream reconnect loop uses: it retries until stopped.
    """

    attempts: int | None
    timeout: float | None
    initial_wait: float = 0.5
    max_wait: float = 8.0

    @classmethod
    def per_attempt(cls, timeout: float, attempts: int) -> RetryPolicy:
        """``attempts`` tries of at most ``timeout`` seconds each, with room for the waits
        between them."""
        return cls(attempts=attempts, timeout=timeout * attempts + 5)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling, capped,
        with ±20 % jitter so that many clients do not retry in step."""
        base: float = min(self.max_wait, self.initial_wait * 2.0 ** max(0, attempt - 1))
        jittered = base * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not security)
        return min(jittered, self.max_wait)

    def wait_for(self, attempt: int, error: BaseException | None) -> float:
        """The wait after ``attempt`` failed with ``error``: backoff, or longer if it asks."""
        wanted = retry_after(error)
        backoff = self.backoff(attempt)
        return max(wanted, backoff) if wanted is not None else backoff


def retryable(error: BaseException) -> bool:
    """True for one of imgbot's errors that says another attempt may succeed."""
    return isinstance(error, ImgbotError) and error.retryable


def retryable_unsent(error: BaseException) -> bool:
    """``retryable``, except a failure after which the call may have arrived (``maybe_delivered``,
    e.g. a timeout): sent again it would be a duplicate (a second card, a second picture)."""
    return retryable(error) and not getattr(error, "maybe_delivered", False)


def retry_after(error: BaseException | None) -> float | None:
    """The wait a failure asked for (``retry_after`` seconds), if any."""
    wanted = getattr(error, "retry_after", None)
    return float(wanted) if isinstance(wanted, int | float) else None


async def pause(seconds: float) -> None:
    """Sleep ``seconds``, or record the wait and return at once while testing."""
    if _testing:
        testing_waits.append(seconds)
        await asyncio.sleep(0)
        return
    await asyncio.sleep(seconds)


async def call(
    once: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_on: Callable[[BaseException], bool],
    what: str,
    observer: Observer,
) -> T:
    """Run ``once`` until it succeeds, ``retry_on`` refuses its error, or a cap is reached.

    The last error is re-raised unchanged. Cancellation is never retried.
    """
    # A failure asking for a longer wait than the policy allows is not retried early.
    stops: list[stop_base] = [
        stop_never,
        _AskedTooLong(policy.max_wait),
    ]
    if policy.attempts is not None:
        stops.append(stop_after_attempt(policy.attempts))
    if policy.timeout is not None:
        stops.append(stop_before_delay(policy.timeout))

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.wait_for(state.attempt_number, error)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait_s = state.upcoming_sleep
        log.info(
            "%s: attempt %d failed (%s); retrying in %.1f s",
            what,
            state.attempt_number,
            _describe(error),
            wait_s,
        )
        observer.retry(what)

    retrying = AsyncRetrying(
        stop=stop_any(*stops),
        wait=wait,
        retry=retry_if_exception(lambda exc: _worth_retrying(exc, retry_on)),
        before_sleep=before_sleep,
        sleep=pause,
        reraise=True,
    )

    async def attempt() -> T:
        # A coroutine function of our own: tenacity awaits only what it sees as one.
        return await once()

    result: T = await retrying(attempt)
    return result


class _AskedTooLong(stop_base):
    """Stop when the last failure asked to wait longer than ``max_wait`` (HTTP Retry-After)."""

    def __init__(self, max_wait: float) -> None:
        self._max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        wanted = retry_after(outcome.exception() if outcome else None)
        return wanted is not None and wanted > self._max_wait


def _worth_retrying(error: BaseException, retry_on: Callable[[BaseException], bool]) -> bool:
    """Never cancellation; a predicate that itself fails means no retry, and the original error
    is raised, not the predicate's."""
    if isinstance(error, asyncio.CancelledError):
        return False
    try:
        return retry_on(error)
    except Exception:
        log.exception("retry predicate failed on %s; not retrying", type(error).__name__)
        return False


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    text = " ".join(str(error).split())[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
