"""Each measurement of the benchmark, one function per figure; run.py puts them in order."""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from PIL import Image

from bench.chat import Answer, burst, sequential
from bench.designs import BURST_USERS, IMGBOT, OLD, Resources, running
from bench.load import LoadResult, get_load
from bench.processes import cpu_seconds, peak_rss_mb, rss_mb
from imgbot.presign import Presigner

WARMUP = 2
PHONE_BYTES_PER_SECOND = 1.25e6  # 10 Mbit/s


def note(text: str) -> None:
    """Progress on stderr; results go to stdout."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class ChatRun:
    """Sequential requests to one design: latencies, bytes shown, and imgbot's stage means."""

    answers: list[Answer]
    shown_bytes: list[int]
    shown_body: bytes
    original_bytes: int | None
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> list[float]:
        """Message in to image reply recorded, per request."""
        return [a.seconds * 1000 for a in self.answers]

    @property
    def visible_ms(self) -> list[float]:
        """Modelled time to a visible image on a 10 Mbit/s phone link, per request."""
        return [
            a.seconds * 1000 + n / PHONE_BYTES_PER_SECOND * 1000
            for a, n in zip(self.answers, self.shown_bytes, strict=True)
        ]


async def download(http: aiohttp.ClientSession, url: str) -> bytes:
    """GET ``url`` and return its body (raises unless 200)."""
    async with http.get(url) as response:
        response.raise_for_status()
        return await response.read()


async def chat_run(design: str, res: Resources, count: int) -> ChatRun:
    """Warm up, then ``count`` sequential requests; then fetch what each reply shows."""
    async with running(design, res) as bot:
        await sequential(bot.sim, WARMUP)
        before = await asyncio.to_thread(bot.stage_totals)
        answers = await sequential(bot.sim, count)
        after = await asyncio.to_thread(bot.stage_totals)
    stage_ms = {
        stage: (total - before.get(stage, (0.0, 0))[0]) / count * 1000
        for stage, (total, _) in after.items()
    }
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        bodies = [await download(http, a.image_url) for a in answers]
        original = answers[0].original_url
        original_bytes = len(await download(http, original)) if original else None
    return ChatRun(answers, [len(b) for b in bodies], bodies[0], original_bytes, stage_ms)


@dataclass
class OriginRuns:
    """Load runs against one origin URL: GETs/s, and the CPU (in cores) the load generator and
    the origin process each used meanwhile."""

    rates: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    origin_cpu: list[float] = field(default_factory=list)

    @property
    def origin_ms_per_get(self) -> list[float]:
        """Origin CPU time per successful GET, in milliseconds, per run."""
        return [cpu / rate * 1000 for cpu, rate in zip(self.origin_cpu, self.rates, strict=True)]


async def origin_rates(
    urls: dict[str, tuple[str, int]], runs: int, seconds: float
) -> dict[str, OriginRuns]:
    """GETs/s for each named (URL, origin pid) with 8 connections; runs interleaved so drift
    hits every URL alike."""
    out = {name: OriginRuns() for name in urls}
    for run in range(runs):
        for name, (url, pid) in urls.items():
            origin_started = cpu_seconds(pid)
            result: LoadResult = await get_load(url, connections=8, seconds=seconds)
            origin = (cpu_seconds(pid) - origin_started) / result.seconds
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} failed GETs of {url.split('?')[0]}")
            out[name].rates.append(result.rate)
            out[name].client_cpu.append(result.client_cpu)
            out[name].origin_cpu.append(origin)
            note(
                f"origin {name} run {run + 1}: {result.rate:,.0f} GET/s "
                f"({result.body_bytes / result.seconds / 1e6:,.0f} MB/s; CPU in cores: "
                f"client {result.client_cpu:.2f}, origin {origin:.2f})"
            )
    return out


def presign_rates(presigner: Presigner, key: str, runs: int, seconds: float) -> list[float]:
    """Links per second from one thread pinned to one core, ``runs`` times."""
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # 0 is this thread on Linux
    try:
        rates = []
        for _ in range(runs):
            made, started = 0, time.perf_counter()
            deadline = started + seconds
            while time.perf_counter() < deadline and made < 10_000_000:
                for _ in range(100):
                    presigner.link(key)
                made += 100
            rates.append(made / (time.perf_counter() - started))
        return rates
    finally:
        os.sched_setaffinity(0, cpus)


@dataclass
class MemoryRun:
    """One fresh bot process through one burst."""

    idle_mb: float
    peak_mb: float
    burst_s: float


async def memory_run(design: str, res: Resources) -> MemoryRun:
    """Start a fresh bot, let it settle, send the burst, read its peak resident memory."""
    async with running(design, res) as bot:
        await asyncio.sleep(0.5)
        idle = rss_mb(bot.child.pid)
        seconds, answers = await burst(bot.sim, BURST_USERS)
        if len(answers) != BURST_USERS:
            raise RuntimeError(f"{design}: {len(answers)} of {BURST_USERS} burst replies")
        peak = peak_rss_mb(bot.child.pid)
    return MemoryRun(idle, peak, seconds)


async def memory_runs(res: Resources, runs: int) -> dict[str, list[MemoryRun]]:
    """``runs`` bursts per design, alternating designs, each on a fresh process."""
    out: dict[str, list[MemoryRun]] = {OLD: [], IMGBOT: []}
    for run in range(runs):
        for design in (OLD, IMGBOT):
            result = await memory_run(design, res)
            out[design].append(result)
            note(
                f"burst {design} run {run + 1}: peak {result.peak_mb:.0f} MB, "
                f"idle {result.idle_mb:.0f} MB, all {BURST_USERS} replies in "
                f"{result.burst_s:.2f} s"
            )
    return out


@dataclass
class Results:
    """Everything one benchmark run measured."""

    chats: dict[str, ChatRun]
    quality: dict[str, float]
    origins: dict[str, OriginRuns]
    presign: list[float]
    memory: dict[str, list[MemoryRun]]
    png_bytes: int
    preview_size: tuple[int, int]
    preview_sweep: str


def decode(data: bytes) -> Image.Image:
    """Decode image bytes fully."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def spread(samples: Sequence[float]) -> str:
    """min / median / max, for progress lines."""
    return f"{min(samples):.1f} / {statistics.median(samples):.1f} / {max(samples):.1f}"
