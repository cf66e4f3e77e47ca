"""The hostile-picture corpus: files made to smuggle metadata, cut, animate or crash intake.

Each builder returns the file's bytes; ``CORPUS`` names them with what intake must do ("stored":
kept with the same pixels and none of the planted bytes, or "refused": an ImageError). Files
found by fuzzing are kept as they were found under ``tests/corpus/``.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageCms

from tests.images import (
    MARKER,
    encode,
    exif_block,
    jpeg_scan_offsets,
    jpeg_segment,
    photo_like,
    png_chunk,
    png_chunk_offsets,
    progressive_jpeg,
    quadrants,
    webp_chunks,
    webp_from_chunks,
)

FOUND = Path(__file__).parent / "corpus"
XMP_ORIENTATION = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)
# Data hidden in JPEG segments that a whitelist keeps (JFIF, Adobe) or that look alike.
JPEG_SEGMENTS = {
    "jfif-extension-thumbnail": (0xE0, b"JFXX\x00\x10" + MARKER * 4),
    "jfif-with-tail": (0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00" + MARKER),
    "app2-flashpix": (0xE2, b"FPXR\x00" + MARKER),
    "app2-mpf-index": (0xE2, b"MPF\x00" + MARKER),
    "adobe-with-tail": (0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + MARKER),
    "iptc": (0xED, b"Photoshop 3.0\x008BIM\x04\x04" + MARKER),
    "app15": (0xEF, MARKER),
}


@functools.cache
def sicc() -> bytes:
    """An sRGB ICC profile, made once: lcms stamps each new profile with the time it was made."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def orientation(value: int) -> bytes:
    """An EXIF block holding only Orientation."""
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def jpeg_exif_between_scans() -> bytes:
    """Progressive JPEG with an APP1 EXIF block (GPS, Make) between its first two scans."""
    source = progressive_jpeg()
    at = jpeg_scan_offsets(source)[1]
    return source[:at] + jpeg_segment(0xE1, exif_block()) + source[at:]


def jpeg_comment_with_end_marker() -> bytes:
    """Progressive JPEG with a comment holding FF D9 between scans (cut a naive stripper)."""
    source = progressive_jpeg(256)
    at = jpeg_scan_offsets(source)[1]
    return source[:at] + jpeg_segment(0xFE, MARKER + b"\xff\xd9" + MARKER) + source[at:]


def jpeg_with_segment(name: str) -> bytes:
    """Baseline JPEG with one of ``JPEG_SEGMENTS`` right after SOI."""
    source = encode(photo_like(64), "JPEG", quality=90)
    return source[:2] + jpeg_segment(*JPEG_SEGMENTS[name]) + source[2:]


def jpeg_trailing_data_and_dpi() -> bytes:
    """JPEG with a 301 DPI JFIF header and bytes after its end marker."""
    return encode(photo_like(64), "JPEG", quality=90, dpi=(301, 301)) + MARKER * 3


def jpeg_table_redefined_after_scan() -> bytes:
    """JPEG whose quantisation table 0 is redefined after the scan: libjpeg's encoder exit()s."""
    source = encode(photo_like(64), "JPEG", quality=90)
    return source[:-2] + jpeg_segment(0xDB, b"\x00" + bytes([7] * 64)) + source[-2:]


def jpeg_xmp_orientation() -> bytes:
    """JPEG whose only orientation is XMP's tiff:Orientation=6 (browsers ignore XMP)."""
    return encode(quadrants(), "JPEG", quality=95, xmp=XMP_ORIENTATION)


def webp_unknown_chunks() -> bytes:
    """Lossless WebP with EXIF, XMP and two unknown chunks holding text."""
    source = encode(photo_like(64), "WEBP", lossless=True, exif=exif_block())
    chunks = webp_chunks(source)
    chunks.insert(1, (b"TEXT", b"note " + MARKER))
    chunks += [(b"XMP ", b"<x:xmpmeta>" + MARKER + b"</x:xmpmeta>"), (b"abcd", MARKER)]
    return webp_from_chunks(chunks)


def webp_stray_flags() -> bytes:
    """Lossy WebP with alpha and ICC whose VP8X claims XMP and hides bytes in reserved fields."""
    image = photo_like(64).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((64, 64)))
    source = encode(image, "WEBP", quality=80, exif=exif_block(), icc_profile=sicc())
    chunks = webp_chunks(source)
    header = chunks[0][1]
    chunks[0] = (b"VP8X", bytes([header[0] | 0x04]) + b"\xab\xcd\xef" + header[4:])
    return webp_from_chunks(chunks)


def webp_one_frame_animation() -> bytes:
    """WebP made of animation chunks (ANIM + one ANMF): Pillow counts one frame."""
    frames = [photo_like(32), photo_like(32, seed=2)]
    chunks = webp_chunks(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]))
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"ANMF")
    return webp_from_chunks(chunks[: first + 1])


def webp_orientation() -> bytes:
    """200x100 WebP tagged Orientation=6 (Chromium ignores it, WebKit applies it)."""
    return encode(quadrants(200, 100), "WEBP", lossless=True, exif=orientation(6))


def apng_two_animation_controls() -> bytes:
    """Two-frame APNG whose acTL appears twice: Pillow then sees one frame, Chromium animates."""
    frames = [photo_like(32, seed=s) for s in (1, 2)]
    source = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    at = png_chunk_offsets(source)[b"acTL"][0]
    return source[: at + 20] + source[at : at + 20] + source[at + 20 :]


def apng_one_frame() -> bytes:
    """APNG with acTL and fcTL for a single frame."""
    source = encode(photo_like(32), "PNG")
    actl = png_chunk(b"acTL", (1).to_bytes(4, "big") + bytes(4))
    fctl = bytes(4) + (32).to_bytes(4, "big") * 2 + bytes(8) + b"\x00\x01\x00\x64\x00\x00"
    return source[:33] + actl + png_chunk(b"fcTL", fctl) + source[33:]


def jpeg_repeated_empty_scans(scans: int = 1000, size: tuple[int, int] = (64, 64)) -> bytes:
    """Greyscale progressive JPEG whose last, empty AC scan (12 bytes) is repeated until the file
    holds ``scans`` scans: a decoder walks the whole picture once a scan, about 1.2 ms a scan at
    24 megapixels, so a few megabytes of them held every edit for minutes."""
    source = encode(Image.new("L", size, 128), "JPEG", progressive=True)
    offsets = jpeg_scan_offsets(source)
    last, end = source[offsets[-2] : offsets[-1]], offsets[-1]
    return source[:end] + last * (scans - len(offsets) + 1) + source[end:]


def png_without_end() -> bytes:
    """PNG whose pixels are complete but whose IEND chunk is missing."""
    whole = encode(photo_like(48), "PNG")
    return whole[: png_chunk_offsets(whole)[b"IEND"][0]]


def png_cut_in_pixels() -> bytes:
    """PNG cut 200 bytes into its image data."""
    whole = encode(photo_like(48), "PNG")
    return whole[: png_chunk_offsets(whole)[b"IDAT"][0] + 200]


def png_data_in_kept_chunks() -> bytes:
    """PNG hiding data in the ICC name, a long gAMA, bKGD/pHYs/sPLT/tIME, IDAT and after IEND."""
    source = encode(photo_like(48), "PNG")
    iccp = png_chunk(b"iCCP", MARKER + b"\x00\x00" + zlib.compress(sicc()))
    extra = b"".join(
        png_chunk(kind, body)
        for kind, body in (
            (b"gAMA", (45455).to_bytes(4, "big") + MARKER),
            (b"bKGD", MARKER[:6]),
            (b"pHYs", MARKER[:9]),
            (b"sPLT", MARKER + b"\x00\x08" + bytes(6)),
            (b"tIME", MARKER[:7]),
            (b"prVt", MARKER),
        )
    )
    source = source[:33] + iccp + extra + source[33:]
    iend = png_chunk_offsets(source)[b"IEND"][0]
    return source[:iend] + png_chunk(b"IDAT", MARKER) + source[iend:] + MARKER


def png_bad_pixel_checksum() -> bytes:
    """PNG whose last IDAT chunk fails its CRC."""
    source = bytearray(encode(photo_like(48), "PNG"))
    source[png_chunk_offsets(bytes(source))[b"IEND"][0] - 1] ^= 0xFF
    return bytes(source)


def png_inflate_bomb() -> bytes:
    """1x1 PNG whose image data inflates to 64 MB past the one pixel it needs."""
    raw = b"\x00\x00\x00\x00" + bytes(64 << 20)
    ihdr = (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    body = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


def png_two_palettes() -> bytes:
    """Palette PNG with a second, different PLTE (libpng refuses it, Pillow uses the last)."""
    source = encode(photo_like(32).convert("P", colors=16), "PNG")
    plte = png_chunk(b"PLTE", bytes(range(48)))
    at = png_chunk_offsets(source)[b"IDAT"][0]
    return source[:at] + plte + source[at:]


def png_orientation() -> bytes:
    """PNG tagged Orientation=3 in an eXIf chunk before its image data (Chromium turns it)."""
    return encode(quadrants(), "PNG", exif=orientation(3))


CORPUS: dict[str, tuple[Callable[[], bytes], str]] = {
    "jpeg-exif-gps-between-scans": (jpeg_exif_between_scans, "stored"),
    "jpeg-comment-with-ffd9-between-scans": (jpeg_comment_with_end_marker, "stored"),
    **{f"jpeg-{name}": ((lambda n=name: jpeg_with_segment(n)), "stored") for name in JPEG_SEGMENTS},
    "jpeg-trailing-data-and-dpi": (jpeg_trailing_data_and_dpi, "stored"),
    "jpeg-quant-table-after-scan": (jpeg_table_redefined_after_scan, "refused"),
    "jpeg-xmp-orientation": (jpeg_xmp_orientation, "stored"),
    "jpeg-1000-empty-scans": (jpeg_repeated_empty_scans, "refused"),
    "webp-unknown-chunks": (webp_unknown_chunks, "stored"),
    "webp-stray-vp8x-flags": (webp_stray_flags, "stored"),
    "webp-one-frame-animation": (webp_one_frame_animation, "refused"),
    "webp-orientation-6": (webp_orientation, "stored"),
    "apng-two-actl": (apng_two_animation_controls, "refused"),
    "apng-one-frame": (apng_one_frame, "stored"),
    "png-without-iend": (png_without_end, "stored"),
    "png-cut-in-pixels": (png_cut_in_pixels, "refused"),
    "png-data-in-kept-chunks": (png_data_in_kept_chunks, "stored"),
    "png-bad-idat-crc": (png_bad_pixel_checksum, "refused"),
    "png-inflate-bomb": (png_inflate_bomb, "refused"),
    "png-two-palettes": (png_two_palettes, "refused"),
    "png-orientation-3": (png_orientation, "stored"),
}


def found_files() -> dict[str, bytes]:
    """Files kept from fuzzing (tests/corpus/*.bin), named for what they do.

    Both are damaged pictures whose decoding depends on bytes outside the image data (a VP8L
    stream that reads past its odd-length chunk into the pad byte; a JPEG whose scan data was cut,
    which two libjpeg builds recover from differently), so a rebuilt copy decodes differently.
    """
    return {path.name: path.read_bytes() for path in sorted(FOUND.glob("*.bin"))}
