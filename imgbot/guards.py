"""Admission guards for the bot: message de-duplication and a per-user sliding-window rate."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


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
    """Allows each user ``limit`` requests per ``window`` seconds."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, user: str) -> bool:
        """Record a request by ``user`` and say whether it is within the limit."""
        now = self._clock()
        events = self._events.setdefault(user, deque())
        while events and now - events[0] >= self._window:
            events.popleft()
        if len(events) >= self._limit:
            return False
        events.append(now)
        if len(self._events) > 10_000:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        for user in [u for u, e in self._events.items() if not e or now - e[-1] >= self._window]:
            del self._events[user]
