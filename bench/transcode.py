"""What storing a JPEG original costs: the lossless libjpeg transcode, per megapixel, and its bytes.

Hand-run, no network: ``.venv/bin/python -m bench.transcode``. For a few generated photo-like
JPEGs it times ``metadata.strip_metadata`` (the transcode in its child process plus our header
segments) and the whole ``imaging.prepare`` (decode, transcode, decoding the result again to
compare pixels, preview), and prints the median of several runs and the stored/upload byte ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from imgbot.images.renditions import prepare
from imgbot.images.strip_metadata import strip_metadata
from tests.images import default_limits, encode, photo_like

RUNS = 7
# (name, side in px, encoder parameters): what phones and generators typically send.
PICTURES = (
    ("1 MP baseline q90 4:2:0", 1024, {"quality": 90}),
    ("1 MP progressive q85", 1024, {"quality": 85, "progressive": True}),
    ("4 MP baseline q92 4:4:4", 2048, {"quality": 92, "subsampling": 0}),
    ("4 MP baseline q75 4:2:0 (Pillow optimize)", 2048, {"quality": 75, "optimize": True}),
)


def median_ms(work: Callable[[], object]) -> float:
    """Median wall time of ``RUNS`` calls, in milliseconds, after one warm-up call."""
    work()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print one Markdown table row per picture."""
    limits = default_limits()
    tiny = encode(photo_like(16), "JPEG")
    start_ms = median_ms(lambda: strip_metadata(tiny, "JPEG"))
    print(f"child process start + 16x16 transcode: {start_ms:.1f} ms (median of {RUNS})\n")
    print("| JPEG | bytes | transcode ms | transcode ms/MP | prepare ms | stored/upload bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, side, params in PICTURES:
        data = encode(photo_like(side, seed=7), "JPEG", **params)
        megapixels = side * side / 1e6
        transcode = median_ms(lambda d=data: strip_metadata(d, "JPEG"))  # type: ignore[misc]
        whole = median_ms(lambda d=data: prepare(d, limits))  # type: ignore[misc]
        ratio = len(strip_metadata(data, "JPEG")) / len(data)
        print(
            f"| {name} | {len(data):,} | {transcode:.0f} | {transcode / megapixels:.0f} "
            f"| {whole:.0f} | {ratio:.3f} |"
        )


if __name__ == "__main__":
    main()
