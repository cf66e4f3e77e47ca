"""The two designs under test, each started as its own bot process against a fresh simulator."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import Child, Minio, child_env, free_port
from imgbot.simulator import DingTalkSimulator

OLD, IMGBOT = "old", "imgbot"
BUCKET = "imgbot-bench"
BURST_USERS = 25


@dataclass(frozen=True)
class Resources:
    """What both bots share: the picture, a work folder, MinIO, and the old design's origin
    (``http.server`` serving ``served`` at ``http_base``)."""

    png: Path
    workdir: Path
    minio: Minio
    served: Path
    http_base: str
    http_pid: int


def _argv_env(
    design: str, res: Resources, sim: DingTalkSimulator, metrics_port: int
) -> tuple[list[str], dict[str, str]]:
    dingtalk = {
        "DINGTALK_CLIENT_ID": sim.client_id,
        "DINGTALK_CLIENT_SECRET": sim.client_secret,
        "DINGTALK_OPENAPI_ENDPOINT": sim.base_url,
    }
    if design == OLD:
        argv = [
            sys.executable,
            "-m",
            "bench.old_design",
            str(res.png),
            str(res.served),
            res.http_base,
        ]
        return argv, child_env(**dingtalk)
    env = child_env(
        **dingtalk,
        S3_ENDPOINT=res.minio.endpoint,
        S3_ACCESS_KEY=res.minio.access_key,
        S3_SECRET_KEY=res.minio.secret_key,
        S3_BUCKET=BUCKET,
        METRICS_PORT=str(metrics_port),
        # Every user of the burst is served at once (the default of 4 answers 21 of them "busy"),
        # and one user's sequential requests are not rate-limited.
        MAX_CONCURRENT_GENERATIONS=str(BURST_USERS),
        USER_REQUESTS_PER_MINUTE="10000",
    )
    return [sys.executable, "-m", "bench.imgbot_process", str(res.png)], env


@dataclass
class RunningBot:
    """A bot process connected to its own simulator."""

    design: str
    sim: DingTalkSimulator
    child: Child
    metrics_url: str | None

    def stage_totals(self) -> dict[str, tuple[float, int]]:
        """imgbot's per-stage (seconds summed, count) from its /metrics; empty for the old bot."""
        if self.metrics_url is None:
            return {}
        with urllib.request.urlopen(self.metrics_url, timeout=5) as answer:
            text = answer.read().decode()
        totals: dict[str, list[float]] = {}
        for line in text.splitlines():
            if line.startswith("imgbot_stage_seconds_"):
                series, value = line.rsplit(" ", 1)
                kind = (
                    "sum"
                    if series.startswith("imgbot_stage_seconds_sum")
                    else ("count" if series.startswith("imgbot_stage_seconds_count") else None)
                )
                if kind is not None:
                    stage = series.split('stage="', 1)[1].split('"', 1)[0]
                    pair = totals.setdefault(stage, [0.0, 0.0])
                    pair[0 if kind == "sum" else 1] = float(value)
        return {stage: (pair[0], int(pair[1])) for stage, pair in totals.items()}


@asynccontextmanager
async def running(design: str, res: Resources) -> AsyncIterator[RunningBot]:
    """A fresh simulator and a fresh bot process of ``design`` connected to it; both stopped
    afterwards."""
    sim = DingTalkSimulator()
    await sim.start()
    try:
        metrics_port = free_port() if design == IMGBOT else 0
        argv, env = _argv_env(design, res, sim, metrics_port)
        child = Child.start(f"bot-{design}", argv, res.workdir, env)
        try:
            await _wait_connected(sim, child)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
            yield RunningBot(design, sim, child, metrics)
        finally:
            await asyncio.to_thread(child.stop)
    finally:
        await sim.stop()


async def _wait_connected(sim: DingTalkSimulator, child: Child, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        child.check_alive()
        try:
            await sim.wait_connected(timeout=0.5)
            return
        except TimeoutError:
            if loop.time() > deadline:
                raise
