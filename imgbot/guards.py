"""Admission guards for the bot: message de-duplication and a per-user sliding-window rate."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Literal

Verdict = Literal["allow", "tell", "quiet"]


class Deduplicator:
    """Remembers message ids for ``ttl`` seconds (DingTalk redelivers un-ACKed messages)."""

    def __init__(
        self,
        ttl: float = 3600.0,
        capacity: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock

    def first_time(self, msg_id: str) -> bool:
        """True the first time ``msg_id`` is offered, False on every repeat within ``ttl``."""
        now = self._clock()
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl and len(self._seen) < self._capacity:
                break
            del self._seen[oldest]
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now
        return True


class RateLimiter:
    """Allows each user ``limit`` messages per ``window`` seconds; says when to tell them so.

    Past the limit a user is told once per window ("tell"), then hears nothing ("quiet"), so a
    script cannot make the bot answer without end.
    """

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._told: dict[str, float] = {}

    def check(self, user: str) -> Verdict:
        """Record a message by ``user``: within the limit, over it and to be told, or quiet."""
        now = self._clock()
        events = self._events.setdefault(user, deque())
        while events and now - events[0] >= self._window:
            events.popleft()
        if len(events) >= self._limit:
            told = self._told.get(user)
            if told is not None and now - told < self._window:
                return "quiet"
            self._told[user] = now
            return "tell"
        events.append(now)
        if len(self._events) > 10_000:
            self._forget_idle(now)
        return "allow"

    def _forget_idle(self, now: float) -> None:
        for user in [u for u, e in self._events.items() if not e or now - e[-1] >= self._window]:
            del self._events[user]
            self._told.pop(user, None)
