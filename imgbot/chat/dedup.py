"""A cheap local filter for repeated message ids, in front of the state store's shared claim."""

from __future__ import annotations

import time
from collections import OrderedDict
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
