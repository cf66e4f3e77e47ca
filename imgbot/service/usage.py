"""The storage usage refresh: the server's usage figures read into the metrics on an interval.

It runs beside the probes, never on a request's path, one read at a time in a thread. A failure
(or figures the server does not offer these keys) is logged once, when it starts or its reason
changes, not at every refresh; the return of the figures is logged once too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from imgbot.bucket.usage import Usage, read_usage
from imgbot.config.settings import Settings
from imgbot.errors import StorageError

log = logging.getLogger(__name__)


class UsageRefresh:
    """Reads usage with ``read`` every ``every`` seconds and hands each result to ``report``."""

    def __init__(
        self,
        read: Callable[[], Usage],
        report: Callable[[Usage | None], None],
        *,
        every: float,
    ) -> None:
        self._read = read
        self._report = report
        self.every = every
        self._problem: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, report: Callable[[Usage | None], None]
    ) -> UsageRefresh:
        """Read the configured storage's figures every STORAGE_USAGE_INTERVAL_SECONDS."""
        return cls(
            lambda: read_usage(settings), report, every=settings.storage_usage_interval_seconds
        )

    async def refresh(self) -> Usage | None:
        """Read once and report it; None (reported too) when the figures could not be read."""
        try:
            usage = await asyncio.to_thread(self._read)
        except StorageError as exc:
            self._failed(str(exc))
            self._report(None)
            return None
        except Exception as exc:  # a bug here must not stop the bot; say it once
            self._failed(f"storage usage read failed unexpectedly: {type(exc).__name__}")
            self._report(None)
            return None
        if self._problem is not None:
            log.info("storage usage readable again")
            self._problem = None
        self._report(usage)
        return usage

    async def run(self) -> None:
        """Refresh until cancelled; does nothing when the interval is 0 (turned off)."""
        if not self.every:
            return
        while True:
            await self.refresh()
            await asyncio.sleep(self.every)

    def _failed(self, problem: str) -> None:
        if problem != self._problem:
            log.warning("%s (said once; the metric imgbot_storage_usage_available is 0)", problem)
            self._problem = problem
