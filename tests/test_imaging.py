"""Validation, metadata removal and previews, on pictures made in the test."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image, PngImagePlugin

from imgbot.errors import ImageError
from imgbot.images.renditions import prepare
from tests.images import decompression_bomb, default_limits, encode, photo_like, photo_png

LIMITS = default_limits()


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
    assert Image.open(io.BytesIO(preview.data)).size == expected
    assert preview.content_type == "image/jpeg"


def test_preview_webp_and_transparency() -> None:
    """A transparent PNG gets a WebP preview laid on white when PREVIEW_FORMAT=webp."""
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    preview = prepare(encode(image), replace(LIMITS, preview_format="webp")).preview
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
        prepare(photo_png(64), replace(LIMITS, max_bytes=1024))


def test_jpeg_keeps_icc_drops_iptc_and_xmp() -> None:
    """JPEG: the ICC profile stays (colours), EXIF/XMP/IPTC/comments go, pixels are unchanged."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(
        photo_like(96),
        "JPEG",
        quality=90,
        icc_profile=icc,
        progressive=True,
        comment=b"private note",
    )
    # Insert an XMP (APP1) and a Photoshop IPTC (APP13) segment right after SOI.
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>secret-xmp</x:xmpmeta>"
    iptc = b"Photoshop 3.0\x008BIM secret-iptc"
    adobe = b"Adobe\x00\x64\x00\x00\x00\x00\x01"  # APP14: says YCbCr, as the data is
    segments = b"".join(
        b"\xff" + bytes([marker]) + (len(body) + 2).to_bytes(2, "big") + body
        for marker, body in ((0xE1, xmp), (0xED, iptc), (0xEE, adobe))
    )
    source = source[:2] + segments + source[2:]
    data = prepare(source, LIMITS).original.data
    for secret in (b"secret-xmp", b"secret-iptc", b"private note"):
        assert secret in source and secret not in data
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == icc
    assert Image.open(io.BytesIO(data)).tobytes() == Image.open(io.BytesIO(source)).tobytes()


def test_png_keeps_palette_transparency_and_icc() -> None:
    """PNG: palette, transparency and the ICC profile survive metadata removal."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = photo_like(64).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "private")
    source = encode(image, "PNG", transparency=0, icc_profile=icc, pnginfo=info)
    data = prepare(source, LIMITS).original.data
    stored = Image.open(io.BytesIO(data))
    assert b"private" not in data
    assert stored.info.get("icc_profile") == icc and stored.info.get("transparency") == 0
    assert stored.tobytes() == Image.open(io.BytesIO(source)).tobytes()
    assert stored.getpalette() == Image.open(io.BytesIO(source)).getpalette()


def test_animated_and_truncated_refused() -> None:
    """Animated PNGs and WebPs, and a PNG cut short, are refused."""
    frames = [photo_like(32, seed=s) for s in (1, 2)]
    for fmt in ("PNG", "WEBP"):
        animated = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
        with pytest.raises(ImageError, match="animated"):
            prepare(animated, LIMITS)
    whole = photo_png(64)
    with pytest.raises(ImageError):
        prepare(whole[: len(whole) // 2], LIMITS)


def test_phone_photo_orientation_kept_and_applied() -> None:
    """A sideways JPEG keeps only its Orientation tag; the preview is drawn upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "TestCamera"
    source = encode(photo_like(80).resize((80, 40)), "JPEG", quality=90, exif=exif.tobytes())
    prepared = prepare(source, LIMITS)
    stored = Image.open(io.BytesIO(prepared.original.data))
    assert dict(stored.getexif()) == {0x0112: 6}
    assert b"TestCamera" not in prepared.original.data
    assert stored.tobytes() == Image.open(io.BytesIO(source)).tobytes()
    assert Image.open(io.BytesIO(prepared.preview.data)).size == (40, 80)


def test_sixteen_bit_grey_png_preview_is_not_white() -> None:
    """A 16-bit greyscale gradient keeps its tones in the 8-bit preview."""
    from PIL import ImageStat

    ramp = b"".join((v * 257).to_bytes(2, "little") for v in range(256))
    source = encode(Image.frombytes("I;16", (256, 1), ramp).resize((256, 64)), "PNG")
    preview = Image.open(io.BytesIO(prepare(source, LIMITS).preview.data)).convert("L")
    assert 100 < ImageStat.Stat(preview).mean[0] < 155
    assert preview.getextrema()[0] < 20


def test_colour_key_transparency_is_laid_on_white_in_the_preview() -> None:
    """An RGB PNG whose tRNS makes one colour transparent previews that colour as white, as the
    copy fitted for an edit does (one rule for both)."""
    image = Image.new("RGB", (64, 64), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 32, 64))
    source = encode(image, "PNG", transparency=(255, 0, 0))
    preview = Image.open(io.BytesIO(prepare(source, LIMITS).preview.data)).convert("RGB")
    assert all(channel > 240 for channel in preview.getpixel((60, 32)))  # type: ignore[union-attr]
    assert preview.getpixel((4, 32))[2] > 200  # type: ignore[index]


def test_mpo_phone_photo_stored_as_jpeg() -> None:
    """A JPEG with extra pictures (MPO) is accepted and stored as a plain JPEG of the first."""
    buffer = io.BytesIO()
    photo_like(64).save(buffer, "MPO", save_all=True, append_images=[photo_like(64, seed=2)])
    prepared = prepare(buffer.getvalue(), LIMITS)
    stored = Image.open(io.BytesIO(prepared.original.data))
    assert prepared.original.content_type == "image/jpeg" and stored.format == "JPEG"
    first = Image.open(io.BytesIO(buffer.getvalue()))
    assert stored.tobytes() == first.convert("RGB").tobytes()


def test_limits_cannot_exceed_pillows_bomb_limit() -> None:
    """ImageLimits refuses a pixel limit above Pillow's, which Pillow would silently enforce."""
    assert Image.MAX_IMAGE_PIXELS is not None
    assert replace(LIMITS, max_pixels=Image.MAX_IMAGE_PIXELS).max_pixels == Image.MAX_IMAGE_PIXELS
    with pytest.raises(ValueError, match="Pillow"):
        replace(LIMITS, max_pixels=Image.MAX_IMAGE_PIXELS + 1)
