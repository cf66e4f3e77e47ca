"""An HTTP GET load generator: a fixed number of connections, bounded in time and in count."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run did."""

    ok: int
    errors: int
    seconds: float
    body_bytes: int
    client_cpu: float
    """CPU the load generator's process used, in cores (1.0 = one core busy throughout)."""

    @property
    def rate(self) -> float:
        """Successful GETs per second."""
        return self.ok / self.seconds


async def get_load(
    url: str, *, connections: int = 8, seconds: float = 3.0, max_requests: int = 100_000
) -> LoadResult:
    """GET ``url`` over ``connections`` concurrent connections for ``seconds`` (or until
    ``max_requests``), reading every body in full."""
    ok = errors = body_bytes = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as http:
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal ok, errors, body_bytes, issued
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                try:
                    async with http.get(url) as response:
                        body = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                if response.status == 200:
                    ok += 1
                    body_bytes += len(body)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return LoadResult(ok, errors, elapsed, body_bytes, cpu / elapsed)
