"""Hostile pictures: the stored original keeps no metadata, stays whole, never animates."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image, PngImagePlugin

from imgbot.errors import ImageError
from imgbot.imaging import prepare
from tests.images import (
    MARKER,
    corner_colours,
    decoded,
    default_limits,
    encode,
    exif_block,
    jpeg_scan_offsets,
    jpeg_segment,
    photo_like,
    png_chunk,
    png_chunk_offsets,
    png_kinds,
    progressive_jpeg,
    quadrants,
    same_pixels,
    webp_chunks,
    webp_from_chunks,
)

LIMITS = default_limits()
ANIMATION_CHUNKS = {b"acTL", b"fcTL", b"fdAT"}


def stored(data: bytes) -> bytes:
    """The original ``prepare`` would store for ``data``."""
    return prepare(data, LIMITS).original.data


def test_exif_gps_between_progressive_scans_removed() -> None:
    """An APP1 EXIF block with GPS between the scans of a progressive JPEG is not stored."""
    source = progressive_jpeg()
    second_scan = jpeg_scan_offsets(source)[1]
    source = source[:second_scan] + jpeg_segment(0xE1, exif_block()) + source[second_scan:]
    data = stored(source)
    assert MARKER in source and MARKER not in data
    assert b"Exif" not in data
    assert same_pixels(data, source)


def test_comment_with_end_marker_between_scans_keeps_the_picture_whole() -> None:
    """A comment holding the bytes FF D9 between scans neither cuts the JPEG nor survives."""
    source = progressive_jpeg(256)
    second_scan = jpeg_scan_offsets(source)[1]
    comment = jpeg_segment(0xFE, MARKER + b"\xff\xd9" + MARKER)
    source = source[:second_scan] + comment + source[second_scan:]
    data = stored(source)
    assert MARKER not in data
    assert same_pixels(data, source)


# Pillow warns about the bogus MPF index; the bot runs with warnings shown, not raised.
@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file:UserWarning")
@pytest.mark.parametrize(
    ("marker", "body"),
    [
        (0xE0, b"JFXX\x00\x10" + MARKER * 4),  # JFIF extension: thumbnail bytes
        (0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00" + MARKER),  # JFIF + tail
        (0xE2, b"FPXR\x00" + MARKER),  # APP2 that is not an ICC profile
        (0xE2, b"MPF\x00" + MARKER),  # multi-picture index of pictures not stored
        (0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + MARKER),  # Adobe + tail
        (0xED, b"Photoshop 3.0\x008BIM\x04\x04" + MARKER),  # IPTC
        (0xEF, MARKER),
    ],
)
def test_jpeg_kept_kinds_of_segment_carry_no_data(marker: int, body: bytes) -> None:
    """Data hidden in JFIF, Adobe and non-ICC APP2 segments is not stored; pixels stay."""
    source = encode(photo_like(64), "JPEG", quality=90)
    source = source[:2] + jpeg_segment(marker, body) + source[2:]
    data = stored(source)
    assert MARKER not in data
    assert same_pixels(data, source)


def test_jpeg_data_after_end_and_dpi_dropped() -> None:
    """Bytes after the end-of-image marker and the JFIF resolution are not stored."""
    source = encode(photo_like(64), "JPEG", quality=90, dpi=(301, 301)) + MARKER * 3
    data = stored(source)
    assert MARKER not in data and "dpi" not in decoded(data).info
    assert same_pixels(data, source)


def test_jpeg_quant_table_redefined_after_scan_does_not_stop_the_process() -> None:
    """A JPEG that makes libjpeg's transcoder call exit() is refused; this process lives on."""
    source = encode(photo_like(64), "JPEG", quality=90)
    dqt = jpeg_segment(0xDB, b"\x00" + bytes([7] * 64))
    source = source[:-2] + dqt + source[-2:]
    decoded(source)  # Pillow reads it
    with pytest.raises(ImageError, match="JPEG could not be re-encoded"):
        prepare(source, LIMITS)


def test_jpeg_colour_transforms_kept() -> None:
    """RGB (Adobe, no transform) and CMYK JPEGs keep their colours exactly."""
    for source in (
        encode(photo_like(64), "JPEG", quality=90, keep_rgb=True),
        encode(photo_like(64).convert("CMYK"), "JPEG", quality=90),
        encode(photo_like(64).convert("L"), "JPEG", quality=90, progressive=True),
    ):
        data = stored(source)
        assert same_pixels(data, source)


def test_webp_unknown_chunk_and_xmp_removed() -> None:
    """A WebP keeps no unknown chunk, no XMP and no EXIF; pixels are unchanged."""
    source = encode(photo_like(64), "WEBP", lossless=True, exif=exif_block())
    chunks = webp_chunks(source)
    chunks.insert(1, (b"TEXT", b"note " + MARKER))
    chunks += [(b"XMP ", b"<x:xmpmeta>" + MARKER + b"</x:xmpmeta>"), (b"abcd", MARKER)]
    source = webp_from_chunks(chunks)
    data = stored(source)
    assert MARKER not in data
    assert {kind for kind, _ in webp_chunks(data)} <= {b"VP8X", b"VP8L", b"VP8 ", b"ALPH", b"ICCP"}
    assert same_pixels(data, source)


def test_webp_flags_and_reserved_bytes_rewritten() -> None:
    """VP8X keeps only the alpha and ICC flags that match the stored chunks."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = photo_like(64).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((64, 64)))
    source = encode(image, "WEBP", quality=80, exif=exif_block(), icc_profile=icc)
    chunks = webp_chunks(source)
    assert chunks[0][0] == b"VP8X"
    chunks[0] = (b"VP8X", bytes([chunks[0][1][0] | 0x04]) + b"\xab\xcd\xef" + chunks[0][1][4:])
    data = stored(webp_from_chunks(chunks))
    flags = webp_chunks(data)[0][1][:4]
    assert flags == bytes([0x20 | 0x10, 0, 0, 0])  # ICC and alpha, nothing else
    assert decoded(data).info.get("icc_profile") == icc
    assert same_pixels(data, source)


def test_animated_webp_with_one_frame_refused() -> None:
    """A WebP made of animation chunks is refused even when it has a single frame."""
    source = encode(photo_like(32), "WEBP", save_all=True, append_images=[], lossless=True)
    source = webp_from_chunks(webp_chunks(source))
    if b"ANMF" not in source:  # Pillow writes one frame as a still picture: build the animation
        frame = photo_like(32, seed=2)
        animated = encode(photo_like(32), "WEBP", save_all=True, append_images=[frame])
        chunks = webp_chunks(animated)
        first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"ANMF")
        source = webp_from_chunks(chunks[: first + 1])
    with pytest.raises(ImageError, match="animated"):
        prepare(source, LIMITS)


def _apng() -> bytes:
    frames = [photo_like(32, seed=s) for s in (1, 2)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:])


@pytest.mark.filterwarnings("ignore:Invalid APNG:UserWarning")
def test_apng_with_two_animation_controls_never_stored_animated() -> None:
    """An APNG whose acTL appears twice (Pillow sees one frame) is refused as animated."""
    source = _apng()
    actl = png_chunk_offsets(source)[b"acTL"][0]
    source = source[: actl + 20] + source[actl : actl + 20] + source[actl + 20 :]
    assert Image.open(io.BytesIO(source)).n_frames == 1  # what let it through
    with pytest.raises(ImageError, match="animated"):
        prepare(source, LIMITS)


def test_one_frame_apng_stored_still() -> None:
    """An APNG with a single frame is stored as a plain PNG without animation chunks."""
    source = encode(photo_like(32), "PNG")
    actl = png_chunk(b"acTL", (1).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    fctl_body = bytes(4) + (32).to_bytes(4, "big") * 2 + bytes(8) + b"\x00\x01\x00\x64\x00\x00"
    ihdr_end = 33
    source = source[:ihdr_end] + actl + png_chunk(b"fcTL", fctl_body) + source[ihdr_end:]
    data = stored(source)
    assert not ANIMATION_CHUNKS & set(png_kinds(data))
    assert same_pixels(data, source)


def test_png_without_end_chunk_stored_whole() -> None:
    """A PNG missing its IEND chunk (pixels complete) is stored with one."""
    whole = encode(photo_like(48), "PNG")
    source = whole[: png_chunk_offsets(whole)[b"IEND"][0]]
    data = stored(source)
    assert png_kinds(data)[-1] == b"IEND" and data.endswith(whole[-12:])
    assert same_pixels(data, whole)


def test_png_cut_inside_pixel_data_refused() -> None:
    """A PNG whose image data stops short is refused."""
    whole = encode(photo_like(48), "PNG")
    idat = png_chunk_offsets(whole)[b"IDAT"][0]
    with pytest.raises(ImageError):
        prepare(whole[: idat + 200], LIMITS)


def test_png_data_in_kept_chunks_removed() -> None:
    """Data hidden in colour chunks, the ICC name and after the pixel stream is not stored."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    info = PngImagePlugin.PngInfo()
    source = encode(photo_like(48), "PNG", pnginfo=info)
    iccp = png_chunk(b"iCCP", MARKER + b"\x00\x00" + zlib.compress(icc))
    extra = b"".join(
        png_chunk(kind, body)
        for kind, body in (
            (b"gAMA", (45455).to_bytes(4, "big") + MARKER),  # a wrong length hides data
            (b"bKGD", MARKER[:6]),
            (b"pHYs", MARKER[:9]),
            (b"sPLT", MARKER + b"\x00\x08" + bytes(6)),
            (b"tIME", MARKER[:7]),
            (b"prVt", MARKER),
        )
    )
    source = source[:33] + iccp + extra + source[33:]
    iend = png_chunk_offsets(source)[b"IEND"][0]
    source = source[:iend] + png_chunk(b"IDAT", MARKER) + source[iend:] + MARKER
    data = stored(source)
    assert MARKER not in data and MARKER[:6] not in data
    assert decoded(data).info.get("icc_profile") == icc
    assert same_pixels(data, source)


def test_png_bad_checksum_in_pixel_data_refused() -> None:
    """A PNG whose image data chunk fails its CRC is refused, as browsers refuse it."""
    source = bytearray(encode(photo_like(48), "PNG"))
    iend = png_chunk_offsets(bytes(source))[b"IEND"][0]
    source[iend - 1] ^= 0xFF  # the last IDAT's CRC
    with pytest.raises(ImageError, match="corrupt"):
        prepare(bytes(source), LIMITS)


def test_png_orientation_applied_to_neither() -> None:
    """A PNG tagged Orientation=3: no tag stored, preview drawn as stored (no rotation)."""
    source = encode(quadrants(), "PNG", exif=_orientation(3))
    prepared = prepare(source, LIMITS)
    original = decoded(prepared.original.data)
    assert b"eXIf" not in prepared.original.data and not original.getexif()
    preview = decoded(prepared.preview.data)
    assert preview.size == original.size
    assert corner_colours(preview) == corner_colours(original)


def test_webp_orientation_applied_to_neither() -> None:
    """A WebP tagged Orientation=6: original 200x100 without EXIF, preview 200x100 too."""
    source = encode(quadrants(200, 100), "WEBP", lossless=True, exif=_orientation(6))
    prepared = prepare(source, LIMITS)
    original = decoded(prepared.original.data)
    assert original.size == (200, 100) and not original.getexif()
    preview = decoded(prepared.preview.data)
    assert preview.size == (200, 100)
    assert corner_colours(preview) == corner_colours(original)


def test_jpeg_orientation_only_in_xmp_not_applied() -> None:
    """Orientation written only in XMP (which browsers ignore) rotates neither rendition."""
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    source = encode(quadrants(), "JPEG", quality=95, xmp=xmp)
    prepared = prepare(source, LIMITS)
    original = decoded(prepared.original.data)
    assert not original.getexif() and b"xmpmeta" not in prepared.original.data
    preview = decoded(prepared.preview.data)
    assert preview.size == original.size == (80, 40)
    assert corner_colours(preview) == corner_colours(original)


def test_jpeg_orientation_kept_and_preview_upright() -> None:
    """A JPEG tagged Orientation=3 keeps that one tag; the preview is drawn turned 180°."""
    source = encode(quadrants(), "JPEG", quality=95, exif=exif_block(tag_0112=3))
    prepared = prepare(source, LIMITS)
    original = decoded(prepared.original.data)
    assert dict(original.getexif()) == {0x0112: 3}
    upright = corner_colours(original.transpose(Image.Transpose.ROTATE_180))
    assert corner_colours(decoded(prepared.preview.data)) == upright


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()
