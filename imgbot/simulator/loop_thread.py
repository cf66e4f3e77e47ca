"""LoopThread: a private event loop on a daemon thread, awaited from the caller's own loop.

The dingtalk-stream SDK calls DingTalk with blocking `requests` (open-connection, access token,
`reply_*`) from inside the bot's event loop. A server sharing that loop could never answer those
calls, so the simulator serves from a loop of its own, as the real DingTalk would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a background event loop; `run` awaits them from any other loop."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the loop thread is started and not yet stopped."""
        return self._loop is not None

    def start(self) -> None:
        """Start the loop on a daemon thread."""
        if self._loop is not None:
            raise RuntimeError(f"{self._name} is already running")
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        self._thread.start()
        self._loop = loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the background loop and await its result; cancelling cancels it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def run_blocking(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coro` on the background loop and block until its result (callers without a loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the background loop, from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback)

    def stop_blocking(self) -> None:
        """``stop`` for callers without a loop of their own."""
        loop, thread = self._loop, self._thread
        self._loop, self._thread = None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    async def stop(self) -> None:
        """Stop the loop, join its thread without blocking the caller's loop, and close it."""
        await asyncio.to_thread(self.stop_blocking)
