"""Lossless removal of metadata (EXIF, GPS, XMP, text) from PNG, JPEG and WebP bytes.

The image data itself is copied byte for byte, so the stored original has exactly the pixels it
was given; re-encoding would cost time and, for JPEG and lossy WebP, change pixels.
"""

from __future__ import annotations

import struct

from imgbot.errors import ImageError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry pixels or affect how they render; everything else (tEXt, zTXt, iTXt, eXIf,
# tIME and private chunks) is dropped.
_PNG_KEEP = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"cHRM",
    b"gAMA",
    b"iCCP",
    b"sBIT",
    b"sRGB",
    b"cICP",
    b"mDCv",
    b"cLLi",
    b"bKGD",
    b"pHYs",
    b"acTL",
    b"fcTL",
    b"fdAT",
}
# JPEG APPn segments that matter for decoding: JFIF (APP0), ICC profile (APP2), Adobe (APP14).
_JPEG_KEEP_APP = {0xE0, 0xEE}
_WEBP_DROP = {b"EXIF", b"XMP "}
_VP8X_EXIF_XMP_FLAGS = 0x08 | 0x04


def strip_metadata(data: bytes, image_format: str) -> bytes:
    """Return ``data`` without metadata; ``image_format`` is Pillow's name (PNG, JPEG, WEBP)."""
    try:
        if image_format == "PNG":
            return _strip_png(data)
        if image_format == "JPEG":
            return _strip_jpeg(data)
        if image_format == "WEBP":
            return _strip_webp(data)
    except (struct.error, IndexError) as exc:
        raise ImageError(f"the {image_format} file is truncated or malformed") from exc
    raise ImageError(f"unsupported image format {image_format}")


def _strip_png(data: bytes) -> bytes:
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError("not a PNG file")
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ImageError("the PNG file is truncated")
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(out)


def _strip_jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise ImageError("not a JPEG file")
    out = [b"\xff\xd8"]
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ImageError("the JPEG file is malformed")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment = data[pos : pos + 2 + length]
        if marker == 0xDA:  # start of scan: the rest is image data up to the end-of-image marker
            end = data.find(b"\xff\xd9", pos)
            out.append(data[pos : end + 2] if end >= 0 else data[pos:])
            return b"".join(out)
        if _keep_jpeg_segment(marker, segment):
            out.append(segment)
        pos += 2 + length
    raise ImageError("the JPEG file has no image data")


def _keep_jpeg_segment(marker: int, segment: bytes) -> bool:
    if marker == 0xFE:  # comment
        return False
    if 0xE0 <= marker <= 0xEF:
        if marker == 0xE2:
            return segment[4:16] == b"ICC_PROFILE\x00"
        return marker in _JPEG_KEEP_APP
    return True


def _strip_webp(data: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ImageError("not a WebP file")
    chunks = []
    pos = 12
    riff_end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= riff_end:
        kind = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        end = pos + 8 + length + (length & 1)
        chunk = data[pos : min(end, riff_end)]
        if kind == b"VP8X":
            flags = chunk[8] & ~_VP8X_EXIF_XMP_FLAGS
            chunk = chunk[:8] + bytes([flags]) + chunk[9:]
        if kind not in _WEBP_DROP:
            chunks.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Return ``jpeg`` (already stripped) with a minimal EXIF block holding only Orientation."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()  # b"Exif\0\0" + a TIFF block with the one tag
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    insert_at = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep JFIF first, as the standard asks
        insert_at = 4 + struct.unpack_from(">H", jpeg, 4)[0]
    return jpeg[:insert_at] + segment + jpeg[insert_at:]
