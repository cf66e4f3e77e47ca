"""Pacing of one card's calls: at least ``min_gap`` seconds apart, one in flight, newest wins.

Each card (by ``outTrackId``) has a turn lock and the time its last call ended. An update waits
its turn and then the rest of the gap; one overtaken by a newer update while it waited is dropped,
since the newer one shows more. The last ``PACED_CARDS`` cards are remembered (oldest forgotten).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

PACED_CARDS = 4096
"""Cards whose last call time is kept for pacing (the oldest are forgotten first)."""


@dataclass
class _Pace:
    """One card's pacing: its calls take turns, the newest update wins."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: float | None = None
    newest: int = 0


class CardPacing:
    """Turns for the calls of each card."""

    def __init__(self, min_gap: float, clock: Callable[[], float]) -> None:
        self._min_gap = min_gap
        self._clock = clock
        self._paces: OrderedDict[str, _Pace] = OrderedDict()

    @asynccontextmanager
    async def first(self, track: str) -> AsyncIterator[None]:
        """The card's creation: it holds the turn, and the gap counts from its end."""
        pace = self._pace(track)
        async with pace.lock:
            try:
                yield
            finally:
                pace.last = self._clock()

    @asynccontextmanager
    async def turn(self, track: str, *, last: bool) -> AsyncIterator[bool]:
        """An update's turn, once the gap since the card's last call has passed; yields False
        (send nothing) when a newer update overtook it meanwhile. ``last`` forgets the card."""
        pace = self._pace(track)
        pace.newest += 1
        mine = pace.newest
        async with pace.lock:
            if mine != pace.newest:
                yield False
                return
            if pace.last is not None:
                wait = pace.last + self._min_gap - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                yield True
            finally:
                pace.last = self._clock()
                if last:
                    self._paces.pop(track, None)

    def _pace(self, track: str) -> _Pace:
        pace = self._paces.get(track)
        if pace is None:
            pace = self._paces[track] = _Pace()
            while len(self._paces) > PACED_CARDS:
                self._paces.popitem(last=False)
        else:
            self._paces.move_to_end(track)
        return pace
