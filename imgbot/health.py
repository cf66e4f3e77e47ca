"""What ``/healthz`` says: connected to DingTalk, and storage answering (probes and uploads)."""

from __future__ import annotations

import time
from collections.abc import Callable

from imgbot.metrics import Metrics

STORAGE_FRESH_SECONDS = 90.0
"""Storage counts as answering this long after its last success (the probe runs every 30 s)."""


def health_report(
    metrics: Metrics, connected: bool, clock: Callable[[], float] = time.monotonic
) -> tuple[bool, dict[str, object]]:
    """Healthy when connected, the last storage call succeeded, and it was recent.

    A failed upload or probe makes the bot unhealthy at once, not only after the freshness window.
    """
    last_ok = metrics.last_storage_ok
    age = clock() - last_ok if last_ok else None
    storage_ok = age is not None and age < STORAGE_FRESH_SECONDS and not metrics.storage_failing
    return connected and storage_ok, {
        "dingtalk_connected": connected,
        "storage_ok": storage_ok,
        "storage_answered_seconds_ago": round(age, 1) if age is not None else None,
        "in_flight": metrics.in_flight_now,
    }
