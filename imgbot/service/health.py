"""What ``/healthz`` says: connected to DingTalk, storage and the state store answering.

``Health`` is an observer: it keeps only what the report needs from the events the bot's parts
report (``imgbot.observe``); metrics are recorded beside it, not read from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imgbot.observe import NoObserver

STORAGE_FRESH_SECONDS = 90.0
"""Storage counts as answering this long after its last success (the probe runs every 30 s)."""
UPLOAD_FAILURE_HOLD_SECONDS = 300.0
"""A failed picture upload keeps storage unhealthy until a picture is stored or this long has
passed: the probe's empty object is taken even by a full storage, so it cannot heal it (and the
ImgbotStorageFailing alert counts upload failures over the same 5 minutes)."""
STORE_FRESH_SECONDS = 30.0
"""The state store counts as answering this long after its last success (probed every 5 s)."""


class Health(NoObserver):
    """The bot's health, followed from events; ``report`` says it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.connected = False
        """True while the DingTalk stream connection is open."""
        self._last_storage_ok: float | None = None
        self._storage_failing = False
        self._upload_failed_at: float | None = None
        self._last_store_ok: float | None = None
        self._store_failing = False
        self._in_flight = 0

    def stored(self, nbytes: int) -> None:
        """Storage took an upload: a failed upload before it no longer counts."""
        self._upload_failed_at = None
        self.storage_answered()

    def storage_answered(self) -> None:
        """Storage answered just now."""
        self._last_storage_ok = self._clock()
        self._storage_failing = False

    def storage_failed(self) -> None:
        """The probe failed just now: unhealthy until the next success."""
        self._storage_failing = True

    def upload_failed(self) -> None:
        """Storing a picture failed just now: unhealthy until a picture is stored, or for
        UPLOAD_FAILURE_HOLD_SECONDS (a probe that succeeds does not end it)."""
        self._storage_failing = True
        self._upload_failed_at = self._clock()

    def store_answered(self) -> None:
        """The state store answered just now."""
        self._last_store_ok = self._clock()
        self._store_failing = False

    def store_failed(self) -> None:
        """A state store call failed just now: unhealthy until the next success."""
        self._store_failing = True

    def in_flight(self, delta: int) -> None:
        """Requests being drawn went up or down by ``delta``."""
        self._in_flight += delta

    def connection(self, up: bool) -> None:
        """The stream connection opened or closed."""
        self.connected = up

    def report(self) -> tuple[bool, dict[str, object]]:
        """Healthy when connected and both storage and the state store answered recently.

        A failed call (upload, probe, admission) makes the bot unhealthy at once, not only after
        the freshness window; the next success makes it healthy again, except that a failed
        upload is ended only by a stored picture or by UPLOAD_FAILURE_HOLD_SECONDS passing.
        """
        now = self._clock()
        age = None if self._last_storage_ok is None else now - self._last_storage_ok
        failed = self._upload_failed_at
        upload_failing = failed is not None and now - failed < UPLOAD_FAILURE_HOLD_SECONDS
        storage_ok = (
            age is not None
            and age < STORAGE_FRESH_SECONDS
            and not self._storage_failing
            and not upload_failing
        )
        store_age = None if self._last_store_ok is None else now - self._last_store_ok
        store_ok = (
            store_age is not None and store_age < STORE_FRESH_SECONDS and not self._store_failing
        )
        return self.connected and storage_ok and store_ok, {
            "dingtalk_connected": self.connected,
            "storage_ok": storage_ok,
            "storage_upload_failing": upload_failing,
            "storage_answered_seconds_ago": round(age, 1) if age is not None else None,
            "state_store_ok": store_ok,
            "state_store_answered_seconds_ago": (
                round(store_age, 1) if store_age is not None else None
            ),
            "in_flight": self._in_flight,
        }
