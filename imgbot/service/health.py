"""What ``/healthz`` says: connected to DingTalk, storage and the state store answering."""

from __future__ import annotations

import time
from collections.abc import Callable

from imgbot.service.metrics import Metrics

STORAGE_FRESH_SECONDS = 90.0
"""Storage counts as answering this long after its last success (the probe runs every 30 s)."""
STORE_FRESH_SECONDS = 30.0
"""The state store counts as answering this long after its last success (probed every 5 s)."""


def health_report(
    metrics: Metrics, connected: bool, clock: Callable[[], float] = time.monotonic
) -> tuple[bool, dict[str, object]]:
    """Healthy when connected and both storage and the state store answered recently.

    A failed call (upload, probe, admission) makes the bot unhealthy at once, not only after the
    freshness window; the next success makes it healthy again.
    """
    now = clock()
    last_ok = metrics.last_storage_ok
    age = now - last_ok if last_ok else None
    storage_ok = age is not None and age < STORAGE_FRESH_SECONDS and not metrics.storage_failing
    store_age = now - metrics.last_store_ok if metrics.last_store_ok else None
    store_ok = (
        store_age is not None and store_age < STORE_FRESH_SECONDS and not metrics.store_failing
    )
    return connected and storage_ok and store_ok, {
        "dingtalk_connected": connected,
        "storage_ok": storage_ok,
        "storage_answered_seconds_ago": round(age, 1) if age is not None else None,
        "state_store_ok": store_ok,
        "state_store_answered_seconds_ago": round(store_age, 1) if store_age is not None else None,
        "in_flight": metrics.in_flight_now,
    }
