"""Tracked background work: every request runs as a task the bot can wait for or cancel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


class TaskTracker:
    """Keeps a reference to each running task (asyncio keeps only weak ones) until it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``work`` as a tracked task."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def pending(self) -> set[asyncio.Task[Any]]:
        """Tasks not finished yet."""
        return {t for t in self._tasks if not t.done()}

    async def drain(self, grace: float) -> None:
        """Let tracked work (and work it starts) finish within ``grace`` seconds, then cancel."""
        deadline = time.monotonic() + grace
        pending = self.pending()
        if pending:
            log.info("waiting up to %.0f s for %d request(s)", grace, len(pending))
        while pending and time.monotonic() < deadline:
            await asyncio.wait(pending, timeout=deadline - time.monotonic())
            pending = self.pending()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=3)
