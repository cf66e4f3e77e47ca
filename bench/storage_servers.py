"""MinIO against SeaweedFS in one run: origin GETs/s of a presigned preview link, and the latency of
imgbot's publish (preview made, original and preview PUT, links signed).

``.venv/bin/python -m bench.storage_servers`` from the checkout's root (about a minute on 2
cores; no other services). Both servers are the test suite's (``tests/minio_server.py``,
``tests/seaweedfs_server.py``), each with a bucket set up by ``imgbot setup``'s code. Rounds take
turns between the servers (and turns about who goes first), so drift in the machine's load hits
both alike. Prints Markdown: medians, min-max, and SeaweedFS's figure as a ratio of MinIO's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/storage_servers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import get_load
from bench.measure import note
from bench.photo import photo_png
from bench.processes import cpu_seconds
from imgbot.bucket.admin import BucketAdmin
from imgbot.config.settings import Settings, load_settings
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.setup import setup
from imgbot.studio.pipeline import Pipeline
from tests.minio_server import MinioServer, minio_binary
from tests.seaweedfs_server import SeaweedServer, weed_binary

BUCKET = "bench"


@dataclass
class Figures:
    """One server's measurements, one entry per round."""

    get_rates: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # cores busy while serving GETs
    publish_ms: list[float] = field(default_factory=list)


def settings_for(endpoint: str, access: str, secret: str, provider: str) -> Settings:
    """imgbot's settings for one server and the benchmark's bucket."""
    return load_settings(
        s3_provider=provider,
        s3_endpoint=endpoint,
        s3_access_key=access,
        s3_secret_key=secret,
        s3_bucket=BUCKET,
    )


async def publish_times(pipeline: Pipeline, picture: bytes, count: int) -> tuple[list[float], str]:
    """Milliseconds of ``count`` publishes; also the preview link of the last one."""
    times, url = [], ""
    for _ in range(count):
        started = time.perf_counter()
        published = await pipeline.publish(picture)
        times.append((time.perf_counter() - started) * 1000)
        url = published.preview_link.url
    return times, url


async def measure(rounds: int, seconds: float, publishes: int, workdir: Path) -> dict[str, Figures]:
    """Start both servers, then interleave rounds of publishes and GET load on each."""
    minio = MinioServer(minio_binary(), workdir / "minio" / "data")
    weed = SeaweedServer(weed_binary(), workdir / "seaweedfs" / "data")
    minio.start()
    weed.start()
    try:
        servers = {
            "MinIO": (
                settings_for(minio.endpoint, minio.access_key, minio.secret_key, "minio"),
                minio.process,
            ),
            "SeaweedFS": (
                settings_for(weed.endpoint, weed.access_key, weed.secret_key, "s3"),
                weed.process,
            ),
        }
        picture = photo_png()
        pipelines = {}
        for name, (settings, _) in servers.items():
            setup(BucketAdmin.from_settings(settings), settings)
            pipelines[name] = Pipeline.from_settings(settings, PlaceholderGenerator())
        figures = {name: Figures() for name in servers}
        try:
            for pipeline in pipelines.values():  # warm-up: connections, first volumes
                await publish_times(pipeline, picture, 2)
            for round_ in range(rounds):
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    process = servers[name][1]
                    assert process is not None
                    times, url = await publish_times(pipelines[name], picture, publishes)
                    figures[name].publish_ms.append(statistics.median(times))
                    started = cpu_seconds(process.pid)
                    load = await get_load(url, connections=8, seconds=seconds)
                    if load.errors:
                        raise RuntimeError(f"{name}: {load.errors} failed GETs")
                    figures[name].get_rates.append(load.rate)
                    figures[name].server_cpu.append(
                        (cpu_seconds(process.pid) - started) / load.seconds
                    )
                    note(
                        f"{name} round {round_ + 1}: publish {statistics.median(times):.1f} ms, "
                        f"{load.rate:,.0f} GET/s, server {figures[name].server_cpu[-1]:.2f} cores"
                    )
        finally:
            for pipeline in pipelines.values():
                await pipeline.aclose()
        return figures
    finally:
        minio.stop()
        weed.stop()


def table(figures: dict[str, Figures]) -> str:
    """The Markdown result table, with SeaweedFS's medians as a ratio of MinIO's."""
    rows = [
        "| server | origin GET/s: median (min–max) | server CPU, cores | publish, ms: median "
        "(min–max) |",
        "| --- | --- | ---: | --- |",
    ]
    for name, f in figures.items():
        rows.append(
            f"| {name} | **{statistics.median(f.get_rates):,.0f}** "
            f"({min(f.get_rates):,.0f}–{max(f.get_rates):,.0f}) "
            f"| {statistics.median(f.server_cpu):.2f} "
            f"| **{statistics.median(f.publish_ms):.1f}** "
            f"({min(f.publish_ms):.1f}–{max(f.publish_ms):.1f}) |"
        )
    m, s = figures["MinIO"], figures["SeaweedFS"]
    gets = statistics.median(s.get_rates) / statistics.median(m.get_rates)
    publish = statistics.median(s.publish_ms) / statistics.median(m.publish_ms)
    rows.append("")
    rows.append(
        f"SeaweedFS / MinIO: origin GETs/s **{gets:.2f}×**, publish latency **{publish:.2f}×**."
    )
    return "\n".join(rows)


def main() -> None:
    """Run the comparison and print the table with the machine it ran on."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="GET load per round")
    parser.add_argument("--publishes", type=int, default=10, help="publishes per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-s3-") as folder:
        figures = asyncio.run(measure(args.rounds, args.seconds, args.publishes, Path(folder)))
    load = os.getloadavg()[0]
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    print(
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
        f"({models[0] if models else platform.machine()}), Python {platform.python_version()}, "
        f"load average {load:.1f} at the end; {args.rounds} rounds, {args.publishes} publishes "
        f"and {args.seconds:g} s of GETs (8 connections) per server per round.\n"
    )
    print(table(figures))


if __name__ == "__main__":
    main()
