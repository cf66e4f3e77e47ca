"""Images per second with one and three bot replicas against one MinIO, with an instant generator.

``.venv/bin/python -m bench.replicas`` from the checkout's root (about a minute on 2 cores; it
needs MinIO and redis-server, which `make install` and `make system-deps` provide). Each layout
runs ``--rounds`` bursts of ``--messages`` requests, each from its own user, pushed by one
simulator to a random connection of the AppKey; a round's figure is requests divided by the time
from the first push to the last image reply. Layouts: one replica on the embedded SQLite store,
one and three replicas sharing one Redis. The generator answers at once with the same photo, so
what is measured is admission, the store, preparing the preview, the uploads and the replies.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from bench.chat import ask
from bench.photo import photo_png
from bench.processes import Child, Minio, child_env
from bench.report import machine
from imgbot.simulator import DingTalkSimulator
from tests.minio_server import minio_binary
from tests.redis_server import RedisServer, redis_binary

BUCKET = "imgbot-bench-replicas"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=24, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per layout")
    parser.add_argument("--size", type=int, default=512, help="side of the photo, in pixels")
    return parser


def main() -> int:
    """Run every layout and print one Markdown table of medians."""
    args = _parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-replicas-") as folder:
        rows = asyncio.run(_bench(Path(folder), args))
    print(f"machine: {machine()}")
    print(f"{args.messages} requests per round, {args.rounds} rounds, {args.size} px photo\n")
    print("| layout | images/s (median) | min–max | slowest answer, s (median) |")
    print("| --- | ---: | --- | ---: |")
    for name, rates, slowest in rows:
        spread = f"{min(rates):.1f}–{max(rates):.1f}"
        print(f"| {name} | {statistics.median(rates):.1f} | {spread} | {slowest:.2f} |")
    return 0


async def _bench(workdir: Path, args: argparse.Namespace) -> list[tuple[str, list[float], float]]:
    png = workdir / "photo.png"
    png.write_bytes(photo_png(args.size))
    minio = Minio(minio_binary(), workdir)
    redis = RedisServer(redis_binary(), workdir / "redis")
    try:
        minio.start()
        redis.start()
        await minio.bucket(BUCKET)  # set up; the bots load their own settings
        layouts = [
            ("1 replica, SQLite", 1, f"sqlite:///{workdir}/state.db"),
            ("1 replica, Redis", 1, redis.url),
            ("3 replicas, one Redis", 3, redis.url),
        ]
        return [
            (name, *await _layout(workdir, png, minio, count, url, args=args))
            for name, count, url in layouts
        ]
    finally:
        redis.stop()
        minio.stop()


async def _layout(
    workdir: Path, png: Path, minio: Minio, count: int, state_url: str, *, args: argparse.Namespace
) -> tuple[list[float], float]:
    """Rounds against ``count`` replicas of one fresh AppKey: images/s each, median slowest."""
    async with AsyncExitStack() as stack:
        sim = DingTalkSimulator(client_id=f"bench-{uuid.uuid4().hex[:8]}", seed=1)
        await sim.start()
        stack.push_async_callback(sim.stop)
        env = child_env(
            DINGTALK_CLIENT_ID=sim.client_id,
            DINGTALK_CLIENT_SECRET=sim.client_secret,
            DINGTALK_OPENAPI_ENDPOINT=sim.base_url,
            S3_ENDPOINT=minio.endpoint,
            S3_ACCESS_KEY=minio.access_key,
            S3_SECRET_KEY=minio.secret_key,
            S3_BUCKET=BUCKET,
            METRICS_PORT="0",
            STATE_URL=state_url,
            MAX_CONCURRENT_GENERATIONS="8",
            MAX_QUEUED_REQUESTS="1000",
            USER_REQUESTS_PER_MINUTE="10000",
        )
        argv = [sys.executable, "-m", "bench.imgbot_process", str(png)]
        for n in range(count):
            child = Child.start(f"replica-{count}-{n}", argv, workdir, env)
            stack.callback(child.stop)
        await sim.wait_until(lambda: sim.connected_count == count, timeout=60)
        await ask(sim, "bench-warm-up", within=60)
        rates, slowest = [], []
        for round_no in range(args.rounds):
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(ask(sim, f"u{round_no}-{n}", within=180) for n in range(args.messages))
            )
            rates.append(args.messages / (time.perf_counter() - started))
            slowest.append(max(a.seconds for a in answers))
        return rates, statistics.median(slowest)


if __name__ == "__main__":
    raise SystemExit(main())
