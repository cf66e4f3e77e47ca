"""The one place that configures tenacity: bounded attempts, bounded time, jittered backoff.

Bare tenacity retries forever with no wait; every retry in imgbot goes through ``retrying``,
which always caps both the attempts and the total time and re-raises the last error.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

# Tests may shrink every wait (never the number of attempts) with IMGBOT_RETRY_WAIT_SCALE=0.01.
_WAIT_SCALE = float(os.environ.get("IMGBOT_RETRY_WAIT_SCALE", "1"))


def retrying(
    *,
    attempts: int,
    max_seconds: float,
    retry_on: Callable[[BaseException], bool],
    initial_wait: float = 0.5,
    max_wait: float = 8.0,
) -> AsyncRetrying:
    """An async retry policy: retry errors ``retry_on`` accepts, within both caps."""
    return AsyncRetrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        wait=wait_exponential_jitter(
            multiplier=initial_wait * _WAIT_SCALE,
            max=max_wait * _WAIT_SCALE,
            jitter=initial_wait * _WAIT_SCALE,
        ),
        retry=retry_if_exception(retry_on),
        reraise=True,
    )
