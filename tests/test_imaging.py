"""Validation, metadata removal and previews, on pictures made in the test."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from imgbot.errors import ImageError
from imgbot.imaging import ImageLimits, prepare
from tests.images import decompression_bomb, encode, photo_like, photo_png

LIMITS = ImageLimits()


def test_png_text_chunks_removed_pixels_same() -> None:
    """tEXt/iTXt and eXIf chunks are dropped from a PNG; pixels are unchanged."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone private")
    info.add_itxt("Location", "北京 secret")
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"
    source = encode(photo_like(128), "PNG", pnginfo=info, exif=exif.tobytes())
    prepared = prepare(source, LIMITS)
    data = prepared.original.data
    assert b"someone private" not in data and b"TestCamera" not in data and b"iTXt" not in data
    assert Image.open(io.BytesIO(data)).tobytes() == Image.open(io.BytesIO(source)).tobytes()


def test_webp_exif_removed_pixels_same() -> None:
    """EXIF is dropped from a lossless WebP; pixels are unchanged."""
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"
    source = encode(photo_like(128), "WEBP", lossless=True, exif=exif.tobytes())
    assert b"TestCamera" in source
    data = prepare(source, LIMITS).original.data
    assert b"TestCamera" not in data and b"EXIF" not in data
    assert Image.open(io.BytesIO(data)).tobytes() == Image.open(io.BytesIO(source)).tobytes()


@pytest.mark.parametrize(
    ("size", "expected"), [((3000, 1500), (1280, 640)), ((800, 600), (800, 600))]
)
def test_preview_long_side(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """The preview's long side is at most 1280 px and smaller pictures keep their size."""
    source = encode(photo_like(64).resize(size), "PNG")
    preview = prepare(source, LIMITS).preview
    assert (preview.width, preview.height) == expected
    assert Image.open(io.BytesIO(preview.data)).size == expected
    assert preview.content_type == "image/jpeg"


def test_preview_webp_and_transparency() -> None:
    """A transparent PNG gets a WebP preview laid on white when PREVIEW_FORMAT=webp."""
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    preview = prepare(encode(image), ImageLimits(preview_format="webp")).preview
    decoded = Image.open(io.BytesIO(preview.data))
    assert decoded.format == "WEBP" and decoded.convert("RGB").getpixel((50, 50)) == (255, 255, 255)


def test_preview_small_for_photo_like_png() -> None:
    """A 1024x1024 photo-like PNG gets a preview of at most 15% of its bytes."""
    source = photo_png()
    prepared = prepare(source, LIMITS)
    assert len(prepared.preview.data) <= 0.15 * len(source)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"plain text", "not a PNG, JPEG or WebP"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), "GIF images are not accepted"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "BMP images are not accepted"),
        (decompression_bomb(), "decompression bomb"),
        (photo_png(64)[:400], "decoded"),
    ],
)
def test_refused(data: bytes, message: str) -> None:
    """Bad bytes raise ImageError with a clear message."""
    with pytest.raises(ImageError, match=message):
        prepare(data, LIMITS)


def test_byte_limit() -> None:
    """Files over MAX_IMAGE_BYTES are refused before decoding."""
    with pytest.raises(ImageError, match="more than the limit"):
        prepare(photo_png(64), ImageLimits(max_bytes=1024))
