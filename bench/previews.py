"""What the chat shows per kind of picture: bytes, SSIMULACRA2, encode time, time to visible.

``.venv/bin/python -m bench.previews`` from the checkout's root (about 3 minutes on 2 cores). Three
kinds of 1024×1024 PNG, two seeds each (``tests/images.py``): photo-like with sensor noise, smooth
generated-like gradients, a flat illustration with text. For each it compares what the chat
shows in the old design (the PNG), in imgbot before (JPEG q92) and in imgbot now (``prepare`` with
today's defaults), then sweeps Pillow and jpegli (``pyjpegli``) qualities for the byte floor at
SSIMULACRA2 ≥ 70. Encode times are medians of interleaved runs in one process; read the ratio.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pyjpegli
from PIL import Image
from ssimulacra2 import compute_ssimulacra2

from bench.measure import PHONE_BYTES_PER_SECOND
from imgbot.config.settings import Settings
from imgbot.images.renditions import ImageLimits, make_preview, prepare
from imgbot.studio.pipeline import limits_from
from tests.images import encode, gradient_like, illustration, photo_like

KINDS: dict[str, Callable[[int, int], Image.Image]] = {
    "photo": photo_like,
    "gradient": gradient_like,
    "illustration": illustration,
    # The same drawing as a 32-colour palette PNG, as flat pictures are often saved: lighter than
    # any JPEG of it, so the chat shows the original.
    "illustration, palette PNG": lambda size, seed: illustration(size, seed).quantize(32),
}
TARGET = 70.0
OLD_QUALITY = 92  # PREVIEW_QUALITY before SSIMULACRA2 was the target
PILLOW_SWEEP = (50, 55, 60, 65, 70)
JPEGLI_SWEEP = (40, 50, 60, 70)


def score(reference: Image.Image, shown: bytes) -> float:
    """SSIMULACRA2 of ``shown`` against ``reference`` (the package reads files; give it PNGs)."""
    picture, reference = Image.open(io.BytesIO(shown)).convert("RGB"), reference.convert("RGB")
    if picture.size != reference.size:
        reference = reference.resize(picture.size, Image.Resampling.LANCZOS)
    a, b = io.BytesIO(encode(reference)), io.BytesIO(encode(picture))
    return float(compute_ssimulacra2(a, b))


def jpegli(image: Image.Image, quality: int) -> bytes:
    """The picture encoded by jpegli (it takes packed RGB and chooses its own subsampling)."""
    rgb = image.convert("RGB")
    return pyjpegli.encode(rgb.tobytes(), rgb.width, rgb.height, quality=quality)


def visible_ms(shown_bytes: int, encode_ms: float = 0.0) -> float:
    """The modelled time to a visible image: encoding, then the bytes over a 10 Mbit/s phone link
    (the main benchmark's model without the reply latency, which the preview does not change)."""
    return encode_ms + 1000 * shown_bytes / PHONE_BYTES_PER_SECOND


@dataclass(frozen=True, slots=True)
class Shown:
    """What one design shows for one picture."""

    bytes: int
    score: float
    encode_ms: float
    original: bool = False


@dataclass(frozen=True, slots=True)
class KindResult:
    """One picture's figures for the old design, imgbot before and imgbot now."""

    kind: str
    seed: int
    png_bytes: int
    old_preview: Shown
    new_preview: Shown


def _median_ms(runs: Sequence[float]) -> float:
    return 1000 * statistics.median(runs)


def measure_kind(kind: str, seed: int, runs: int, limits: ImageLimits) -> KindResult:
    """Prepare one picture with the old and the new preview setting; time both, alternating."""
    image = KINDS[kind](1024, seed)
    png = encode(image)
    old_limits = replace(limits, preview_quality=OLD_QUALITY)
    timings: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(runs):
        for name, lim in (("old", old_limits), ("new", limits)):
            started = time.perf_counter()
            make_preview(image, lim)
            timings[name].append(time.perf_counter() - started)
    old = make_preview(image, old_limits).data  # imgbot before always showed its JPEG preview
    new = prepare(png, limits)
    shown = new.preview.data
    return KindResult(
        kind,
        seed,
        len(png),
        Shown(len(old), score(image, old), _median_ms(timings["old"])),
        Shown(len(shown), score(image, shown), _median_ms(timings["new"]), new.preview_is_original),
    )


def sweep(kind: str, seed: int, limits: ImageLimits) -> list[tuple[str, int, int, float]]:
    """(encoder, quality, bytes, SSIMULACRA2) of each swept setting on one picture."""
    image = KINDS[kind](1024, seed)
    rows = []
    for quality in PILLOW_SWEEP:
        data = make_preview(image, replace(limits, preview_quality=quality)).data
        rows.append(("Pillow", quality, len(data), score(image, data)))
    for quality in JPEGLI_SWEEP:
        data = jpegli(image, quality)
        rows.append(("jpegli", quality, len(data), score(image, data)))
    return rows


def jpegli_ms(kind: str, runs: int) -> float:
    """Median jpegli encode time of one picture at q60 (the RGB copy included)."""
    image = KINDS[kind](1024, 1)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        jpegli(image, 60)
        times.append(time.perf_counter() - started)
    return _median_ms(times)


def results_table(results: Sequence[KindResult], quality: int) -> str:
    """The per-kind Markdown table: old design, imgbot q92, imgbot now."""
    lines = [
        "| picture (1024×1024) | PNG bytes (old design shows it) | q92 preview bytes / SSIMULACRA2 "
        f"| now: shown bytes / SSIMULACRA2 (q{quality} or the original) | now / q92 bytes "
        "| encode ms per MP, q92 → now (ratio) | modelled ms to visible: old design / q92 / now "
        "| now / old design |",
        "|" + " --- |" * 8,
    ]
    for r in results:
        old, new = r.old_preview, r.new_preview
        shows = "the original" if new.original else "preview"
        old_ms, was_ms = visible_ms(r.png_bytes), visible_ms(old.bytes, old.encode_ms)
        now_ms = visible_ms(new.bytes, new.encode_ms)
        lines.append(
            f"| {r.kind}, seed {r.seed} | {r.png_bytes:,} | {old.bytes:,} / {old.score:.1f} "
            f"| {new.bytes:,} / {new.score:.1f} ({shows}) | {new.bytes / old.bytes:.3f} "
            f"| {old.encode_ms:.1f} → {new.encode_ms:.1f} ({new.encode_ms / old.encode_ms:.2f}) "
            f"| {old_ms:,.0f} / {was_ms:,.0f} / {now_ms:,.0f} | {now_ms / old_ms:.3f} |"
        )
    return "\n".join(lines)


def sweep_table(rows: dict[str, list[tuple[str, int, int, float]]]) -> str:
    """Bytes and SSIMULACRA2 per swept setting (columns) and picture (rows); ✗ below 70."""
    settings = [(enc, q) for enc, q, _, _ in next(iter(rows.values()))]
    head = " | ".join(f"{enc} q{q}" for enc, q in settings)
    lines = [f"| picture | {head} |", "|" + " --- |" * (len(settings) + 1)]
    for name, cells in rows.items():
        text = [f"{b / 1000:.1f} KB / {s:.1f}{'' if s >= TARGET else ' ✗'}" for _, _, b, s in cells]
        lines.append(f"| {name} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def main() -> int:
    """Measure, then print the tables in Markdown."""
    parser = argparse.ArgumentParser(prog="bench.previews", description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="timed encodes per picture and setting")
    parser.add_argument("--seeds", type=int, default=2, help="pictures per kind")
    parser.add_argument("--no-sweep", action="store_true", help="skip the quality sweep")
    args = parser.parse_args()
    limits = limits_from(Settings.model_construct())  # the configured defaults, no environment
    pictures = [(kind, seed) for kind in KINDS for seed in range(1, args.seeds + 1)]
    results = [measure_kind(kind, seed, args.runs, limits) for kind, seed in pictures]
    print(results_table(results, limits.preview_quality))
    per_mp = [r.new_preview.encode_ms / (1024 * 1024 / 1e6) for r in results]
    print(f"\nencode ms per megapixel now, median over pictures: {statistics.median(per_mp):.1f}")
    jli = [jpegli_ms(kind, args.runs) for kind in KINDS]
    print(f"jpegli q60 encode ms per 1 MP picture, per kind: {', '.join(f'{t:.1f}' for t in jli)}")
    if not args.no_sweep:
        rows = {f"{kind}, seed {seed}": sweep(kind, seed, limits) for kind, seed in pictures}
        print("\n" + sweep_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
