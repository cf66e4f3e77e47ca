"""What validating a user's picture in its own child process costs, against doing it in a thread.

Hand-run, no network: ``.venv/bin/python -m bench.intake``. For a few pictures a user might send
it times ``prepare_edit`` in a thread of this process (the former design, the baseline) and through
``PictureWorkers`` (a fresh child per picture, CPU-time limited), alternating the two, and prints
the median of several runs of each, the time added and the ratio. An empty file (refused at once
by the child) shows the child's own cost: starting Python and importing Pillow.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

from imgbot.config.settings import Settings
from imgbot.errors import ImageError
from imgbot.images.renditions import prepare_edit
from imgbot.images.workers import PictureWorkers
from imgbot.models import EditSpec
from tests.images import default_limits, encode, photo_like

RUNS = 7
SPEC = EditSpec(min_side=384, max_side=3072, max_bytes=10 * 1024 * 1024, format="JPEG")


def pictures() -> dict[str, bytes]:
    """An empty file, a small PNG, a 1 MP JPEG, a 12 MP phone JPEG and a 20 MP progressive one
    (the largest MAX_IMAGE_PIXELS accepts by default)."""
    phone = photo_like(4000).crop((0, 0, 4000, 3000))
    large = photo_like(5163).crop((0, 0, 5163, 3873))
    return {
        "empty file (refused at once)": b"",
        "160x160 PNG": encode(photo_like(160), "PNG"),
        "1 MP JPEG q90": encode(photo_like(1024), "JPEG", quality=90),
        "12 MP phone JPEG q92": encode(phone, "JPEG", quality=92),
        "20 MP (5163x3873) progressive 4:4:4 JPEG q92": encode(
            large, "JPEG", quality=92, progressive=True, subsampling=0
        ),
    }


async def _median_ms(work: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(ImageError):  # the empty file: its refusal is what is timed
            await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _children_cpu() -> float:
    """CPU seconds used so far by ended children (a worker and the transcoder it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    """Print one Markdown table row per picture."""
    defaults = Settings.model_construct()
    limits = default_limits()
    workers = PictureWorkers(slots=1, cpu_seconds=defaults.picture_cpu_seconds)
    print(
        "| picture | bytes | in a thread (ms) | in a child (ms) | added (ms) | ratio "
        "| CPU in children (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, data in pictures().items():
        runs = 3 if len(data) > 2_000_000 else RUNS

        async def thread(d: bytes = data) -> object:
            return await asyncio.to_thread(prepare_edit, d, limits, SPEC)

        async def child(d: bytes = data) -> object:
            return await workers.edit_input(d, limits, SPEC, owner="bench", wall_seconds=600)

        await _median_ms(thread, 1)  # warm-up, as for every figure here
        await _median_ms(child, 1)
        thread_times, child_times, cpu = [], [], []
        for _ in range(runs):  # alternating, so both see the same load on the shared machine
            thread_times.append(await _median_ms(thread, 1))
            before = _children_cpu()
            child_times.append(await _median_ms(child, 1))
            cpu.append(_children_cpu() - before)
        baseline, child_ms = statistics.median(thread_times), statistics.median(child_times)
        print(
            f"| {name} | {len(data):,} | {baseline:.0f} | {child_ms:.0f} "
            f"| {child_ms - baseline:.0f} | {child_ms / baseline:.2f} "
            f"| {statistics.median(cpu):.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
