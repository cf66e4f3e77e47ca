"""Fuzz image intake: for any bytes, ``imaging.prepare`` gives decodable renditions or ImageError.

atheris (libFuzzer for Python) instruments imgbot and Pillow's PNG, JPEG and WebP plugins, starts
from small valid pictures and the hostile corpus (``seed``), and mutates towards new coverage.
Any other exception, or a stored original that does not decode, is a finding: libFuzzer stops
and writes the input as ``crash-*`` in the artifact folder. Run through ``make fuzz``::

    .venv/bin/python -m fuzz.prepare .data/fuzz/corpus -max_total_time=60
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["imgbot", "PIL"]):
    from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401

    from imgbot.errors import ImageError
    from imgbot.images.renditions import prepare

from tests.images import default_limits

# Defaults, with a smaller pixel limit: a mutated header declaring 40 MP would cost seconds per
# run to decode, and the parsers under test do not depend on the size.
LIMITS = replace(default_limits(), max_pixels=1_000_000)


def check(data: bytes) -> None:
    """One fuzz input: ImageError is an answer; anything else is a bug."""
    try:
        prepared = prepare(data, LIMITS)
    except ImageError:
        return
    for rendition in (prepared.original, prepared.preview):
        Image.open(io.BytesIO(rendition.data)).load()


def seed(folder: Path) -> None:
    """Write small valid pictures and the hostile corpus into ``folder`` (if it is empty)."""
    from tests import hostile
    from tests.images import encode, photo_like

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    image = photo_like(24)
    seeds = {
        "rgb.png": encode(image, "PNG"),
        "palette.png": encode(image.convert("P"), "PNG", transparency=0),
        "interlaced-la.png": encode(image.convert("LA"), "PNG", interlace=True),
        "grey16.png": encode(image.convert("I;16"), "PNG"),
        "baseline.jpg": encode(image, "JPEG", quality=80),
        "progressive.jpg": encode(image, "JPEG", quality=80, progressive=True),
        "grey.jpg": encode(image.convert("L"), "JPEG"),
        "cmyk.jpg": encode(image.convert("CMYK"), "JPEG"),
        "lossless.webp": encode(image, "WEBP", lossless=True),
        "lossy-alpha.webp": encode(image.convert("RGBA"), "WEBP", quality=70, exif=b"Exif\0\0"),
    }
    seeds |= {f"hostile-{name}": build() for name, (build, _) in hostile.CORPUS.items()}
    for name, data in seeds.items():
        if len(data) <= 64 * 1024:
            (folder / name).write_bytes(data)


def main() -> None:
    """Seed the corpus folder named on the command line, then fuzz."""
    warnings.simplefilter("ignore")  # Pillow warns on broken files; the bot shows, not raises
    folders = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    if folders:
        seed(folders[0])
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
