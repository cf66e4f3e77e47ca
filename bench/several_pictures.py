"""Peak memory and time of 4 users each asking for 4 pictures at once (「画4张」).

``.venv/bin/python -m bench.several_pictures`` from the checkout's root (about a minute on 2
cores; it needs the MinIO binary). Each run starts a fresh bot process, exactly as ``imgbot run``
builds it with the default settings (MAX_CONCURRENT_GENERATIONS=4, MAX_IMAGES_PER_REQUEST=4), but
with the fixed-picture generator of ``bench/photo.py`` (a 1024x1024 photo-like PNG of about
1.3 MB, answered at once): with ``n`` = 1 several pictures are several calls (like the
placeholder), with ``n`` = 4 one call answers all four (like a provider's ``n``). Four users send
「画4张小猫」 at the same moment; the run ends when the four answers (4 pictures each) are
recorded. Printed: the bot's peak resident memory (VmHWM), idle and after the burst, and the time
from the first push to the last answer; medians over ``--runs`` fresh processes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/several_pictures.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat import IMAGE_RE
from bench.photo import photo_png
from bench.processes import Child, Minio, child_env, peak_rss_mb
from bench.report import machine
from imgbot.simulator import DingTalkSimulator
from tests.minio_server import minio_binary

BUCKET = "imgbot-bench-several"
USERS = 4
PROMPT = "画4张小猫"


def main() -> int:
    """Measure both generator shapes, print one Markdown table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh bot processes per shape")
    parser.add_argument("--size", type=int, default=1024, help="side of the photo, in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-several-") as folder:
        rows = asyncio.run(_bench(Path(folder), args))
    print(f"machine: {machine()}")
    print(f"{USERS} users x 「{PROMPT}」 at once, {args.runs} runs, {args.size} px photo\n")
    print("| generator | idle MB | peak MB (median) | min–max | s to the last answer (median) |")
    print("| --- | ---: | ---: | --- | ---: |")
    for name, idle, peaks, seconds in rows:
        spread = f"{min(peaks):.0f}–{max(peaks):.0f}"
        print(
            f"| {name} | {statistics.median(idle):.0f} | {statistics.median(peaks):.0f} "
            f"| {spread} | {statistics.median(seconds):.2f} |"
        )
    return 0


async def _bench(
    workdir: Path, args: argparse.Namespace
) -> list[tuple[str, list[float], list[float], list[float]]]:
    png = workdir / "photo.png"
    png.write_bytes(photo_png(args.size))
    minio = Minio(minio_binary(), workdir)
    try:
        minio.start()
        await minio.bucket(BUCKET)  # set up; the bots load their own settings
        rows = []
        shapes = (
            ("baseline: 「画一只小猫」, 1 picture each", 1, 1),
            ("several calls (n = 1)", 1, 4),
            ("provider n (n = 4)", 4, 4),
        )
        for name, max_n, pictures in shapes:
            idle, peaks, seconds = [], [], []
            for run in range(args.runs):
                tag = f"{max_n}-{pictures}-{run}"
                got = await _run(workdir, png, minio, max_n=max_n, pictures=pictures, tag=tag)
                idle.append(got[0])
                peaks.append(got[1])
                seconds.append(got[2])
            rows.append((name, idle, peaks, seconds))
        return rows
    finally:
        minio.stop()


async def _run(
    workdir: Path, png: Path, minio: Minio, *, max_n: int, pictures: int, tag: str
) -> tuple[float, float, float]:
    """One fresh bot, one burst: its idle and peak memory in MB, and the burst's seconds."""
    sim = DingTalkSimulator(client_id=f"bench-{uuid.uuid4().hex[:8]}", seed=1)
    await sim.start()
    env = child_env(
        DINGTALK_CLIENT_ID=sim.client_id,
        DINGTALK_CLIENT_SECRET=sim.client_secret,
        DINGTALK_OPENAPI_ENDPOINT=sim.base_url,
        S3_ENDPOINT=minio.endpoint,
        S3_ACCESS_KEY=minio.access_key,
        S3_SECRET_KEY=minio.secret_key,
        S3_BUCKET=BUCKET,
        METRICS_PORT="0",
        STATE_URL=f"sqlite:///{workdir}/state-{tag}.db",
    )
    argv = [sys.executable, "-m", "bench.imgbot_process", str(png), str(max_n)]
    child = Child.start(f"bot-{tag}", argv, workdir, env)
    try:
        await sim.wait_until(lambda: sim.connected_count == 1, timeout=60)
        idle = peak_rss_mb(child.pid)

        def answered() -> bool:
            full = [r for r in sim.replies if len(IMAGE_RE.findall(r.text)) == pictures]
            return len(full) == USERS

        waiter = asyncio.create_task(sim.wait_until(answered, timeout=180))
        await asyncio.sleep(0)
        started = time.perf_counter()
        for user in range(USERS):
            prompt = PROMPT if pictures > 1 else "画一只小猫"
            await sim.send_text(prompt, sender_staff_id=f"bench-user-{user}")
        await waiter
        seconds = time.perf_counter() - started
        child.check_alive()
        return idle, peak_rss_mb(child.pid), seconds
    finally:
        child.stop()
        await sim.stop()


if __name__ == "__main__":
    sys.exit(main())
