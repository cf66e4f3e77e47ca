"""Waiting in tests: poll a condition until it holds; fail naming it when it never does.

The timeout only keeps a broken run from hanging; no outcome depends on how fast it passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INTERVAL = 0.05


async def wait_until(
    predicate: Callable[[], object],
    timeout: float = 20.0,  # noqa: ASYNC109 (bounds the polling; nothing awaited needs cancelling)
    what: str = "condition",
) -> None:
    """Poll ``predicate`` on the running loop until it is true; fail after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g} s")
        await asyncio.sleep(INTERVAL)


def poll_until(
    predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> None:
    """``wait_until`` for code that blocks (no event loop): sleeps between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g} s")
        time.sleep(INTERVAL)
