"""The one retry policy: caps on attempts and total time, backoff, Retry-After, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from imgbot.net import retry
from imgbot.service.metrics import Metrics


class Flaky(Exception):
    """A failure worth retrying."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def failing(calls: list[int], error: BaseException) -> Callable[[], Awaitable[None]]:
    async def once() -> None:
        calls.append(1)
        raise error

    return once


async def run(policy: retry.RetryPolicy, error: BaseException, metrics: Metrics) -> list[int]:
    calls: list[int] = []
    with pytest.raises(type(error)):
        await retry.call(
            failing(calls, error),
            policy=policy,
            retry_on=lambda exc: isinstance(exc, Flaky),
            what="thing",
            observer=metrics,
        )
    return calls


async def test_attempts_cap_and_doubling_waits(no_retry_waits: list[float]) -> None:
    """Four attempts wait three times, doubling each time; the last error is raised."""
    metrics = Metrics()
    calls = await run(retry.RetryPolicy(attempts=4, timeout=None), Flaky(), metrics)
    assert len(calls) == 4 and len(no_retry_waits) == 3
    for attempt, waited in enumerate(no_retry_waits, start=1):
        assert 0.8 * 0.5 * 2 ** (attempt - 1) <= waited <= 1.2 * 0.5 * 2 ** (attempt - 1)
    assert metrics.retries() == {"thing": 3}


async def test_total_time_cap_stops_before_a_wait_that_would_pass_it(
    no_retry_waits: list[float],
) -> None:
    """A wait that would end past the total cap is not started: the error comes instead."""
    policy = retry.RetryPolicy(attempts=10, timeout=1.0, initial_wait=0.4)
    calls = await run(policy, Flaky(), Metrics())
    # Waits of about 0.4 and 0.8 s fit under 1 s; the third (about 1.6 s) would not.
    assert len(calls) == 3 and len(no_retry_waits) == 2


async def test_retry_after_is_honoured_between_attempts(no_retry_waits: list[float]) -> None:
    """A failure asking for a longer wait gets it between attempts, none after the last."""
    policy = retry.RetryPolicy(attempts=3, timeout=None, max_wait=5.0)
    await run(policy, Flaky(retry_after=4), Metrics())
    assert no_retry_waits == [4.0, 4.0]


async def test_retry_after_beyond_max_wait_fails_at_once(no_retry_waits: list[float]) -> None:
    """Asked to wait longer than the policy allows, the call fails now instead of retrying early."""
    policy = retry.RetryPolicy(attempts=3, timeout=None, max_wait=5.0)
    calls = await run(policy, Flaky(60), Metrics())
    assert len(calls) == 1 and no_retry_waits == []


async def test_a_failing_predicate_keeps_the_original_error(no_retry_waits: list[float]) -> None:
    """If the retry predicate raises, the call's own error is raised, not the predicate's."""

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    with pytest.raises(KeyError):
        await retry.call(
            failing([], KeyError("original")),
            policy=retry.RetryPolicy(attempts=3, timeout=None),
            retry_on=broken,
            what="thing",
            observer=Metrics(),
        )
    assert no_retry_waits == []


async def test_waits_double_up_to_max_wait_and_jitter_never_passes_it(
    no_retry_waits: list[float],
) -> None:
    """Waits double from initial_wait until max_wait; at the cap, jitter only shortens a wait."""
    policy = retry.RetryPolicy(attempts=40, timeout=None, initial_wait=0.5, max_wait=2.0)
    await run(policy, Flaky(), Metrics())
    assert len(no_retry_waits) == 39
    for attempt, waited in enumerate(no_retry_waits, start=1):
        base = min(2.0, 0.5 * 2 ** (attempt - 1))
        assert 0.8 * base <= waited <= min(1.2 * base, 2.0), (attempt, waited)


async def test_other_errors_and_cancellation_are_not_retried(no_retry_waits: list[float]) -> None:
    """An error the caller does not retry, and cancellation, end the call at once."""
    policy = retry.RetryPolicy(attempts=5, timeout=None)
    assert len(await run(policy, ValueError("final"), Metrics())) == 1
    assert len(await run(policy, asyncio.CancelledError(), Metrics())) == 1
    assert no_retry_waits == []


async def test_real_waits_sleep() -> None:
    """Without the test switch the policy really waits between attempts."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run(retry.RetryPolicy(attempts=2, timeout=None, initial_wait=0.05), Flaky(), Metrics())
    assert loop.time() - started >= 0.04
