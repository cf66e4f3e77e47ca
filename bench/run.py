"""The benchmark's entry point: ``.venv/bin/python -m bench.run`` from the checkout's root.

Starts MinIO, ``python -m http.server`` and, per measurement, a fresh DingTalk simulator and a
bot process of each design; stops them all; prints the results table and writes it into
BENCHMARKS.md between its result markers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure, report
from bench.designs import BUCKET, BURST_USERS, IMGBOT, OLD, Resources
from bench.measure import ChatRun, Results, note
from bench.photo import photo_png
from bench.processes import ROOT, Minio, start_http_server
from bench.report import Row, median
from bench.ssim import fidelity
from imgbot.config.settings import Settings
from imgbot.presign import Presigner
from tests.minio_server import minio_binary

COMMAND = ".venv/bin/python -m bench.run"
TEMPLATE = (
    f"# Benchmarks\n\nRun `{COMMAND}` from the checkout's root.\n\n{report.START}\n{report.END}\n"
)
PRESIGN_KEY = "imagegen/2025/01/01/abcdefghijklmnopqrstuvwxyz.preview.jpg"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    parser.add_argument("--messages", type=int, default=15, help="sequential requests per design")
    parser.add_argument("--runs", type=int, default=3, help="repeats of presign and burst")
    parser.add_argument("--load-runs", type=int, default=5, help="load runs per origin")
    parser.add_argument("--load-seconds", type=float, default=3.0, help="length of one load run")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    return parser


def main() -> int:
    """Run everything, print the table, write BENCHMARKS.md."""
    args = _parser().parse_args()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-") as tmp:
        results = asyncio.run(_bench(Path(tmp), args))
    elapsed = (datetime.now(UTC) - started).total_seconds()
    text = _results_block(results, args, started, elapsed)
    print(text)
    if not args.no_write:
        report.write(ROOT / "BENCHMARKS.md", text, TEMPLATE)
        note("results written to BENCHMARKS.md")
    return 0


async def _bench(workdir: Path, args: argparse.Namespace) -> Results:
    png = workdir / "photo.png"
    png.write_bytes(photo_png())
    served = workdir / "served"
    served.mkdir()
    minio = Minio(minio_binary(), workdir)
    http_server = None
    try:
        minio.start()
        http_server, http_base = start_http_server(served, workdir)
        res = Resources(png, workdir, minio, served, http_base, http_server.pid)
        settings = await minio.bucket(BUCKET)
        return await _measure(res, settings, args)
    finally:
        if http_server is not None:
            http_server.stop()
        minio.stop()


async def _measure(res: Resources, settings: Settings, args: argparse.Namespace) -> Results:
    chats: dict[str, ChatRun] = {}
    for design in (OLD, IMGBOT):
        chats[design] = await measure.chat_run(design, res, args.messages)
        note(
            f"{design}: reply latency ms {measure.spread(chats[design].latency_ms)}, "
            f"shows {chats[design].shown_bytes[0]:,} bytes"
        )
    preview = chats[IMGBOT].shown_body
    quality = fidelity(measure.decode(res.png.read_bytes()), measure.decode(preview))
    note("preview fidelity: " + ", ".join(f"{k} {v:.4f}" for k, v in quality.items()))
    (res.served / "same-preview.jpg").write_bytes(preview)
    http_pid, minio_pid = res.http_pid, res.minio.child.pid if res.minio.child else 0
    origins = await measure.origin_rates(
        {
            "old-png": (chats[OLD].answers[0].image_url, http_pid),
            "old-preview": (f"{res.http_base}/same-preview.jpg", http_pid),
            "imgbot-preview": (chats[IMGBOT].answers[0].image_url, minio_pid),
        },
        args.load_runs,
        args.load_seconds,
    )
    presign = measure.presign_rates(Presigner.from_settings(settings), PRESIGN_KEY, args.runs, 2.0)
    note(f"presigned links/s: {measure.spread(presign)}")
    memory = await measure.memory_runs(res, args.runs)
    sweep = "Per kind of picture, with SSIMULACRA2: `.venv/bin/python -m bench.previews`."
    return Results(
        chats,
        quality,
        origins,
        presign,
        memory,
        res.png.stat().st_size,
        measure.decode(preview).size,
        sweep,
    )


def _rows(r: Results) -> list[Row]:
    old, new = r.chats[OLD], r.chats[IMGBOT]
    memory, quality, presign = r.memory, r.quality, r.presign
    rates = {name: runs.rates for name, runs in r.origins.items()}
    old_cpu, new_cpu = r.origins["old-preview"], r.origins["imgbot-preview"]
    overhead = median(new.latency_ms) - median(old.latency_ms)
    visible = median(new.visible_ms) / median(old.visible_ms)
    shown = median(new.shown_bytes) / median(old.shown_bytes)
    peak = {d: [m.peak_mb for m in runs] for d, runs in memory.items()}
    return [
        Row("reply latency, message in → image reply (ms)", old.latency_ms, new.latency_ms, 1),
        Row(
            "reply latency overhead, imgbot − old, at the median (ms)",
            None,
            [overhead],
            1,
            "≤ 120",
            overhead <= 120,
        ),
        Row(
            "bytes a client downloads to show the image (KB)",
            [b / 1000 for b in old.shown_bytes],
            [b / 1000 for b in new.shown_bytes],
            1,
            "≤ 0.15 of the PNG",
            shown <= 0.15,
        ),
        Row(
            # Informative only: the preview's target is SSIMULACRA2 (bench/previews.py), as SSIM
            # punishes grain that nobody sees.
            "preview SSIM, luma (vs original at preview size)",
            None,
            [quality["ssim_luma"]],
            4,
        ),
        Row("preview SSIM, mean of R, G, B", None, [quality["ssim_rgb"]], 4),
        Row("preview PSNR, RGB (dB)", None, [quality["psnr_db"]], 2),
        Row(
            "modelled time to visible image, 10 Mbit/s (ms)",
            old.visible_ms,
            new.visible_ms,
            0,
            "imgbot/old ≤ 0.25",
            visible <= 0.25,
        ),
        Row(
            "origin GETs/s, what the chat shows (old: PNG, http.server; imgbot: preview, MinIO)",
            rates["old-png"],
            rates["imgbot-preview"],
            0,
        ),
        Row(
            "origin GETs/s, the preview object (old: http.server; imgbot: MinIO presigned)",
            rates["old-preview"],
            rates["imgbot-preview"],
            0,
            "imgbot/old ≥ 1",
            median(rates["imgbot-preview"]) >= median(rates["old-preview"]),
        ),
        Row(
            "CPU of the origin process during those runs (cores of 2)",
            old_cpu.origin_cpu,
            new_cpu.origin_cpu,
            2,
        ),
        Row(
            "origin CPU per preview GET (ms)",
            old_cpu.origin_ms_per_get,
            new_cpu.origin_ms_per_get,
            3,
        ),
        Row(
            "CPU of the benchmark's load generator during those runs (cores of 2)",
            old_cpu.client_cpu,
            new_cpu.client_cpu,
            2,
        ),
        Row(
            "presigned links/s, one thread pinned to one core",
            None,
            presign,
            0,
            "≥ 10,000",
            median(presign) >= 10_000,
        ),
        Row(
            f"bot peak RSS, fresh process through a {BURST_USERS}-user burst (MB)",
            peak[OLD],
            peak[IMGBOT],
            1,
            "imgbot < 400",
            max(peak[IMGBOT]) < 400,
        ),
        Row(
            "bot RSS when idle after start (MB)",
            [m.idle_mb for m in memory[OLD]],
            [m.idle_mb for m in memory[IMGBOT]],
            1,
        ),
        Row(
            f"time until all {BURST_USERS} burst replies (s)",
            [m.burst_s for m in memory[OLD]],
            [m.burst_s for m in memory[IMGBOT]],
            2,
        ),
    ]


def _results_block(r: Results, args: argparse.Namespace, started: datetime, elapsed: float) -> str:
    new = r.chats[IMGBOT]
    width, height = r.preview_size
    lines = [
        f"Run of {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s: `{COMMAND}`"
        + (
            f" (with `--messages {args.messages} --runs {args.runs} --load-runs {args.load_runs} "
            f"--load-seconds {args.load_seconds:g}`)"
            if _options(args) != (15, 3, 5, 3.0)
            else ""
        ),
        "",
        f"Machine: {report.machine()}.",
        "",
        f"Samples: {args.messages} sequential requests per design after {measure.WARMUP} "
        f"warm-up ones; {args.load_runs} load runs of {args.load_seconds:g} s per origin; "
        f"{args.runs} presign runs of 2 s; {args.runs} bursts per design, each on a fresh process. "
        "Ratios are of medians; pass/fail is judged on the median, except memory (the largest "
        "sample).",
        "",
        report.table(_rows(r)),
        "",
        f"The picture: a {r.png_bytes:,}-byte 1024×1024 PNG. imgbot stores it as the original "
        f"({new.original_bytes or 0:,} bytes, metadata stripped) and a {width}×{height} preview "
        f"({new.shown_bytes[0]:,} bytes); the chat shows the preview.",
        "",
        report.stage_table(new.stage_ms, statistics.fmean(new.latency_ms)),
        "",
        r.preview_sweep,
    ]
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> tuple[int, int, int, float]:
    return args.messages, args.runs, args.load_runs, args.load_seconds


if __name__ == "__main__":
    raise SystemExit(main())
