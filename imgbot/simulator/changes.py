"""Wakes the simulator's waiters whenever it records something, so each re-checks its condition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ChangeSignal:
    """A re-armed event: ``bump()`` wakes everyone waiting; used on the simulator's loop only."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def arm(self) -> None:
        """Start signalling (called once the simulator's loop runs)."""
        self._event = asyncio.Event()

    def bump(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        if self._event is not None:
            self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, find: Callable[[], T | None], limit_s: float, what: str) -> T:
        """Return ``find()``'s first non-None value, re-checked after each bump."""

        async def poll() -> T:
            while True:
                changed = self._event or asyncio.Event()
                found = find()
                if found is not None:
                    return found
                await changed.wait()

        try:
            return await asyncio.wait_for(poll(), limit_s)
        except TimeoutError:
            raise TimeoutError(f"timed out after {limit_s:g}s waiting for {what}") from None
