"""The storage usage refresh: the server's usage figures read into the metrics on an interval.

It runs beside the probes, never on a request's path, one read at a time in a thread. A failure
(or figures the server does not offer these keys) is logged once, when it starts or its reason
changes, not at every refresh; the return of the figures is logged once too. It is a warning when
the operator asked for the figures (S3_USAGE_* keys or S3_USAGE_METRICS_URL) or they were readable
before; otherwise (a default install whose bot user may not read them) an info line.
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
        asked: bool = False,
    ) -> None:
        self._read = read
        self._report = report
        self.every = every
        self._asked = asked
        self._problem: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, report: Callable[[Usage | None], None]
    ) -> UsageRefresh:
        """Read the configured storage's figures every STORAGE_USAGE_INTERVAL_SECONDS."""
        return cls(
            lambda: read_usage(settings),
            report,
            every=settings.storage_usage_interval_seconds,
            asked=bool(settings.s3_usage_access_key or settings.s3_usage_metrics_url),
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
        self._asked = True  # readable once: losing the figures later is worth a warning
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
            level = logging.WARNING if self._asked else logging.INFO
            said = "%s (said once; the metric imgbot_storage_usage_available is 0)"
            log.log(level, said, problem)
            self._problem = problem
