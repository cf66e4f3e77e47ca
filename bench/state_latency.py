"""The state store's added latency per request: SQLite and Redis against a no-store baseline.

``.venv/bin/python -m bench.state_latency`` from the checkout's root (about 20 s on 2 cores; it
needs redis-server, which `make system-deps` installs). One request makes the calls the bot makes
for one message: ``claim_message`` + ``rate`` + ``submit`` (claimed at once by a free worker) +
``begin_reply`` + ``finish``. Each store runs the same requests, interleaved (one request per store
in turn) so that a noisy neighbour slows all alike; the baseline makes the same awaits on a store
that answers at once, in the same run. Redis runs on loopback with ``appendonly yes`` and its
default ``appendfsync everysec``; SQLite in WAL with ``synchronous=NORMAL``, as imgbot opens it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from bench.report import machine
from imgbot.state import Job, StateStore, StoreReport, Verdict
from imgbot.state.redis_store import RedisStore
from imgbot.state.sqlite_store import SQLiteStore
from tests.redis_server import RedisServer, redis_binary


class NoStore:
    """The baseline: every call answers at once, as the in-process guards did."""

    async def claim_message(self, msg_id: str, ttl_seconds: float) -> bool:
        return True

    async def rate(self, user: str, limit: int, window_seconds: float) -> Verdict:
        return "allow"

    async def submit(
        self,
        job_id: str,
        payload: str,
        *,
        max_waiting: int,
        claim_for: str | None,
        lease_seconds: float,
    ) -> Job | Literal["waiting", "busy", "known"]:
        return Job(job_id, payload, "token", 1)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        return None

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        return True

    async def begin_reply(self, job: Job, lease_seconds: float) -> bool:
        return True

    async def finish(self, job: Job) -> None:
        return None

    async def waiting(self) -> int:
        return 0

    async def report(self) -> StoreReport:
        return StoreReport("none", "", "")

    async def aclose(self) -> None:
        return None


PAYLOAD = (
    '{"text": "帮我画一只可爱的小猫", "conversation": "cid", "webhook": "https://example"}' * 4
)


async def one_request(store: StateStore, n: int) -> float:
    """Milliseconds one message's store calls take."""
    started = time.perf_counter()
    assert await store.claim_message(f"msg-{n}", 86_400)
    assert await store.rate(f"user-{n % 50}", 1_000_000, 60) == "allow"
    job = await store.submit(
        f"job-{n}", PAYLOAD, max_waiting=1000, claim_for="worker-1", lease_seconds=60
    )
    assert isinstance(job, Job)
    assert await store.begin_reply(job, 60)
    await store.finish(job)
    return (time.perf_counter() - started) * 1000


def p90(samples: list[float]) -> float:
    """The 90th percentile."""
    return statistics.quantiles(samples, n=10)[-1]


async def measure(
    stores: dict[str, StateStore], requests: int, warmup: int
) -> dict[str, list[float]]:
    """Per-request milliseconds for each store, interleaved, after ``warmup`` untimed requests."""
    times: dict[str, list[float]] = {name: [] for name in stores}
    for n in range(warmup + requests):
        for name, store in stores.items():
            elapsed = await one_request(store, n)
            if n >= warmup:
                times[name].append(elapsed)
    return times


def table(times: dict[str, list[float]], versions: dict[str, str]) -> str:
    """The results as Markdown: median, p90, and the median added over the baseline."""
    base = statistics.median(times["no store (baseline)"])
    lines = [
        "| store | median (ms) | p90 (ms) | added at the median (ms) |",
        "| --- | --- | --- | --- |",
    ]
    for name, samples in times.items():
        median = statistics.median(samples)
        label = f"{name} {versions.get(name, '')}".strip()
        lines.append(f"| {label} | {median:.2f} | {p90(samples):.2f} | {median - base:.2f} |")
    return "\n".join(lines)


async def run(requests: int, warmup: int, folder: Path) -> str:
    """Start Redis, open both stores, measure, stop everything; the Markdown table."""
    server = RedisServer(redis_binary(), folder / "redis", fsync="everysec")
    server.start()
    sqlite = SQLiteStore(folder / "state.db", app="imgbot:bench:")
    redis = RedisStore.from_url(server.url, "imgbot:bench:")
    try:
        stores: dict[str, StateStore] = {
            "no store (baseline)": NoStore(),
            "SQLite": sqlite,
            "Redis": redis,
        }
        versions = {
            "SQLite": (await sqlite.report()).version,
            "Redis": (await redis.report()).version,
        }
        times = await measure(stores, requests, warmup)
    finally:
        await sqlite.aclose()
        await redis.aclose()
        server.stop()
    return table(times, versions)


def main() -> int:
    """Measure, then print the table in Markdown."""
    parser = argparse.ArgumentParser(prog="bench.state_latency", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per store")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-state-") as folder:
        result = asyncio.run(run(args.requests, args.warmup, Path(folder)))
    print(result)
    print(f"\n{args.requests} requests per store after {args.warmup} warm-up; {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
