"""Peak memory of MAX_CONCURRENT_GENERATIONS edits of the largest accepted picture at once.

Usage: ``.venv/bin/python -m bench.edit_memory`` from the checkout's root. Starts a MinIO, makes
the largest pictures the default limits accept (MAX_IMAGE_PIXELS pixels, at most MAX_IMAGE_BYTES):
an RGB JPEG like a camera's; the worst case, a noisy progressive 4:4:4 JPEG (libjpeg buffers all
coefficients of a progressive file, 6 bytes a pixel at 4:4:4, besides the 4 of the decoded
picture); and an RGBA PNG, the most bytes a decoded pixel takes. For each it runs a fresh process
that edits it that many times at once through ``Pipeline.edit`` with the placeholder generator
against the real MinIO. Prints one Markdown table row per picture: the process's resident memory
when idle and at its peak (VmHWM), and the peak of the whole process tree (the process, its
picture workers and their JPEG transcoders: the sum of their VmRSS, sampled every 20 ms), which
is what the machine must have.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/edit_memory.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from bench.processes import ROOT, Minio, child_env, tree_rss_mb
from imgbot.bucket.admin import BucketAdmin
from imgbot.config.settings import Settings, load_settings
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.models import Origin
from imgbot.setup import setup
from imgbot.studio.pipeline import Pipeline
from tests.images import photo_like
from tests.minio_server import minio_binary

BUCKET = "imgbot-edit-bench"
TARGET_MB = 400


NOISE = 0.2
"""How much colour noise the worst-case JPEG has: about 12 MB at 24 MP, q92, 4:4:4."""


def largest_pictures(settings: Settings, folder: Path) -> dict[str, Path]:
    """The biggest 4:3 JPEGs (photo-like; noisy progressive 4:4:4) and RGBA PNG (smooth) the
    limits accept, as files."""
    width = math.isqrt(settings.max_image_pixels * 4 // 3)
    height = settings.max_image_pixels // width
    photo = photo_like(max(width, height)).crop((0, 0, width, height))
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 40) for _ in range(3)])
    files = {}
    for name, picture, params in (
        ("jpeg", photo, {}),
        ("jpeg-progressive-444-noisy", Image.blend(photo, noise, NOISE), {"progressive": True}),
    ):
        for quality in (92, 85, 75, 60):
            jpeg = _encode(picture, "JPEG", quality=quality, subsampling=0, **params)
            if name == "jpeg":
                jpeg = _encode(picture, "JPEG", quality=quality)
            if len(jpeg) <= settings.max_image_bytes:
                files[name] = jpeg
                break
    del photo, noise
    alpha = Image.linear_gradient("L").resize((width, height))
    smooth = Image.merge("RGBA", (alpha, alpha.rotate(180), alpha, alpha.transpose(0)))
    files["png-rgba"] = _encode(smooth, "PNG", compress_level=9)
    paths = {}
    for name, data in files.items():
        if len(data) > settings.max_image_bytes:
            raise SystemExit(f"{name}: {len(data)} bytes is above MAX_IMAGE_BYTES")
        paths[name] = folder / f"largest-{name}"
        paths[name].write_bytes(data)
    return paths


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _vm_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


async def _edit_at_once(data: bytes) -> dict[str, float]:
    """In the measured process: N edits of ``data`` at once; the memory they took."""
    settings = load_settings()
    pipeline = Pipeline.from_settings(settings, PlaceholderGenerator())
    idle = _vm_kb("VmRSS") / 1024
    count = settings.max_concurrent_generations
    started = time.perf_counter()
    await asyncio.gather(
        *(pipeline.edit(data, "换成水彩画风格", Origin(msg_id=f"m{i}")) for i in range(count))
    )
    return {
        "edits": count,
        "seconds": time.perf_counter() - started,
        "idle_mb": idle,
        "peak_mb": _vm_kb("VmHWM") / 1024,
    }


def _measure(picture: Path, env: dict[str, str]) -> dict[str, float]:
    """Run the measured process on ``picture``, sampling its tree's memory until it ends."""
    argv = [sys.executable, "-m", "bench.edit_memory", "--child", str(picture)]
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], tree_rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"the measured process failed:\n{err[-3000:]}")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return {**result, "tree_peak_mb": peak[0]}


def main() -> int:
    """Start MinIO, make the pictures, measure each in a fresh process, print the rows."""
    parser = argparse.ArgumentParser(prog="bench.edit_memory", description=__doc__)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-image-pixels", type=int, help="measure with this MAX_IMAGE_PIXELS, not the default"
    )
    parser.add_argument(
        "--only", help="measure only this picture (jpeg, jpeg-progressive-444-noisy, png-rgba)"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_edit_at_once(args.child.read_bytes()))))
        return 0
    with tempfile.TemporaryDirectory(prefix="imgbot-edit-bench-") as tmp:
        workdir = Path(tmp)
        minio = Minio(minio_binary(), workdir)
        minio.start()
        try:
            keys = {
                "S3_ENDPOINT": minio.endpoint,
                "S3_ACCESS_KEY": minio.access_key,
                "S3_SECRET_KEY": minio.secret_key,
                "S3_BUCKET": BUCKET,
            }
            if args.max_image_pixels:
                keys["MAX_IMAGE_PIXELS"] = str(args.max_image_pixels)
            settings = load_settings(**{k.lower(): v for k, v in keys.items()})
            setup(BucketAdmin.from_settings(settings), settings)
            pictures = largest_pictures(settings, workdir)
            print(
                "| picture | bytes | edits at once | idle MB | bot peak MB "
                "| bot + children peak MB | s |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- |")
            worst = 0.0
            for name, path in pictures.items():
                if args.only and name != args.only:
                    continue
                with Image.open(path) as image:
                    shape = f"{name} {image.width}x{image.height}"
                got = _measure(path, child_env(**keys))
                worst = max(worst, got["tree_peak_mb"])
                print(
                    f"| {shape} | {path.stat().st_size:,} | {got['edits']:.0f} | "
                    f"{got['idle_mb']:.0f} | {got['peak_mb']:.0f} | {got['tree_peak_mb']:.0f} "
                    f"| {got['seconds']:.1f} |",
                    flush=True,
                )
        finally:
            minio.stop()
    verdict = "pass" if worst < TARGET_MB else "FAIL"
    print(f"\nlargest peak, bot and children: {worst:.0f} MB, target < {TARGET_MB} MB: {verdict}")
    return 0 if worst < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
