"""The stored original's bytes: PNG, JPEG or WebP rebuilt with no metadata and the same pixels.

Nothing is copied on trust. JPEG goes through libjpeg (mozjpeg's lossless transcode), which reads
every scan and writes fresh headers from the DCT coefficients, so no segment of the upload
survives. PNG and WebP are rebuilt from a strict list of the chunks that make up the pixels and
their colours, each checked for its exact form; the ICC profile and (JPEG only) the Orientation
tag are written back by us. ``imgbot.images.renditions`` decodes the result and compares it
with the upload.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from functools import cache

from PIL import Image

from imgbot.errors import ImageError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary PNG chunks that change how the pixels look, with their one valid length (sBIT, PLTE
# and tRNS depend on the colour type). The rest is data about the picture, which browsers do not
# use to draw it: text (tEXt zTXt iTXt), EXIF (eXIf), time (tIME), physical size or DPI (pHYs),
# a suggested background (bKGD), palette suggestions (hIST sPLT), oFFs sTER, private and unknown
# chunks; animation chunks (acTL fcTL fdAT) go too, so a one-frame APNG is stored still.
_PNG_COLOUR = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"cICP": 4, b"mDCv": 24, b"cLLi": 8}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_PNG_TRNS_LENGTH = {0: 2, 2: 6}
_PNG_SBIT_LENGTH = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_PNG_SINGLE = {b"IHDR", b"PLTE", b"tRNS"}
# Adam7 interlacing: (first column, first row, column step, row step) of each of the 7 passes.
_ADAM7 = (
    (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)
)  # fmt: skip
_IDAT_PIECE = 1 << 18
_WEBP_ALPHA, _WEBP_ICC = 0x10, 0x20
_ICC_PIECE = 65_519  # largest ICC slice one APP2 segment holds
_LIBJPEG_HEADERS = (b"\xff\xe0", b"\xff\xee")  # the JFIF or Adobe segment libjpeg writes first
# A backstop only: the child's CPU-time limit bounds the work (a child that waits uses none).
_TRANSCODE_TIMEOUT = 120.0
# libjpeg's encoder calls exit() on some files its decoder accepts (a quantisation table redefined
# after a scan is enough), and C code reading hostile bytes may crash: transcoding in a child
# process turns either into one refused upload instead of a dead bot. The child limits its own CPU
# time first (the kernel stops it past the limit) and writes no core file.
_TRANSCODER = """
import resource, sys
seconds = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
sys.path[:0] = sys.argv[2:]
from mozjpeg_lossless_optimization import COPY_MARKERS, optimize
try:
    sys.stdout.buffer.write(optimize(sys.stdin.buffer.read(), COPY_MARKERS.NONE))
except ValueError:
    sys.exit(3)
"""


def strip_metadata(
    data: bytes,
    image_format: str,
    icc_profile: bytes | None = None,
    orientation: int = 1,
    *,
    cpu_seconds: int = 10,
) -> bytes:
    """Rebuild ``data`` (Pillow's format name: PNG, JPEG, WEBP) without metadata.

    ``icc_profile`` is written back when given; ``orientation`` (1-8) is kept for JPEG only,
    the one format whose EXIF orientation every browser applies. A JPEG's transcode may use
    ``cpu_seconds`` of CPU time (``ImageError`` kind ``too_slow`` past it).
    """
    try:
        if image_format == "PNG":
            return _strip_png(data, icc_profile)
        if image_format == "JPEG":
            return _strip_jpeg(data, icc_profile, orientation, cpu_seconds)
        if image_format == "WEBP":
            return _strip_webp(data, icc_profile)
    except (struct.error, IndexError, zlib.error) as exc:
        raise ImageError(f"the {image_format} file is truncated or malformed") from exc
    raise ImageError(f"unsupported image format {image_format}")


# --- JPEG ------------------------------------------------------------------------------------


def _strip_jpeg(
    data: bytes, icc_profile: bytes | None, orientation: int, cpu_seconds: int
) -> bytes:
    jpeg = bytearray(_transcode(data, cpu_seconds))
    if jpeg[2:4] == b"\xff\xe0" and jpeg[6:11] == b"JFIF\x00":
        jpeg[13:18] = b"\x00\x00\x01\x00\x01"  # resolution (DPI) copied by libjpeg: square pixels
    pos = 2
    while bytes(jpeg[pos : pos + 2]) in _LIBJPEG_HEADERS:  # ours go after them
        pos += 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    segments = []
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        segments.append(_jpeg_segment(0xE1, exif.tobytes()))
    if icc_profile:
        pieces = [icc_profile[i : i + _ICC_PIECE] for i in range(0, len(icc_profile), _ICC_PIECE)]
        if len(pieces) > 255:
            raise ImageError("the JPEG's ICC profile is too large")
        for number, piece in enumerate(pieces, 1):
            header = b"ICC_PROFILE\x00" + bytes([number, len(pieces)])
            segments.append(_jpeg_segment(0xE2, header + piece))
    return bytes(jpeg[:pos]) + b"".join(segments) + bytes(jpeg[pos:])


def _jpeg_segment(marker: int, body: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body


def _transcode(data: bytes, cpu_seconds: int) -> bytes:
    """The JPEG rewritten by libjpeg from its DCT coefficients, with no optional marker."""
    command = [sys.executable, "-I", "-S", "-c", _TRANSCODER, str(cpu_seconds)]
    command += _transcoder_path()
    # The child needs no setting and no credential: only what starting Python may need.
    env = {key: os.environ[key] for key in ("PATH", "LD_LIBRARY_PATH") if key in os.environ}
    try:
        done = subprocess.run(
            command,
            input=data,
            capture_output=True,
            env=env,
            timeout=_TRANSCODE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageError("the JPEG took too long to re-encode", kind="too_slow") from None
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ImageError(
            f"the JPEG took more than {cpu_seconds} s of CPU time to re-encode", kind="too_slow"
        )
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        raise ImageError("the JPEG could not be re-encoded without loss (malformed file)")
    return done.stdout


@cache
def _transcoder_path() -> tuple[str, ...]:
    # The child runs without site (-S: a quicker start), so it is given the two folders it needs.
    folders = []
    for module in ("mozjpeg_lossless_optimization", "_cffi_backend"):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ImageError(f"{module} is not installed; reinstall imgbot")
        folder = os.path.dirname(spec.origin)
        folders.append(os.path.dirname(folder) if module.startswith("mozjpeg") else folder)
    return tuple(dict.fromkeys(folders))


# --- PNG -------------------------------------------------------------------------------------


def _strip_png(data: bytes, icc_profile: bytes | None) -> bytes:
    chunks = _png_chunks(data)
    kind, ihdr = next(chunks, (b"", b""))
    if kind != b"IHDR" or len(ihdr) != 13:
        raise ImageError("the PNG file does not start with its header")
    colour_type = ihdr[9]
    kept: dict[bytes, bytes] = {}  # the first valid chunk of each kind, before the image data
    seen = {b"IHDR"}
    idat: list[bytes] = []
    frames = 0
    for kind, body in chunks:
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"fcTL":
            frames += 1
        elif kind == b"fdAT":
            frames = max(frames, 2)
        elif idat:
            continue  # chunks after the image data change nothing a viewer shows
        elif kind in _PNG_SINGLE and kind in seen:
            # Decoders differ on which one counts (libpng refuses, Pillow takes the last).
            raise ImageError(f"the PNG file is malformed (two {kind.decode('latin-1')} chunks)")
        elif kind not in kept and _png_chunk_fits(kind, body, colour_type, kept):
            kept[kind] = body
        seen.add(kind)
    if frames > 1:
        raise ImageError("animated images are not accepted")
    if colour_type == 3 and b"PLTE" not in kept:
        raise ImageError("the PNG file is malformed (no valid palette)")
    stream = _pixel_stream(b"".join(idat), _raw_size(ihdr))
    out = [_PNG_SIGNATURE, _png_chunk(b"IHDR", ihdr)]
    out += [_png_chunk(kind, kept[kind]) for kind in _PNG_COLOUR if kind in kept]
    if icc_profile:
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    out += [_png_chunk(kind, kept[kind]) for kind in (b"sBIT", b"PLTE", b"tRNS") if kind in kept]
    pieces = range(0, len(stream), _IDAT_PIECE)
    out += [_png_chunk(b"IDAT", stream[i : i + _IDAT_PIECE]) for i in pieces]
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _png_chunk_fits(kind: bytes, body: bytes, colour_type: int, kept: dict[bytes, bytes]) -> bool:
    """Whether an ancillary chunk is one that shapes the pixels, in its one valid form.

    A wrong length is how data hides in an allowed chunk (decoders read the first bytes and
    skip the rest), so such chunks are dropped, as libpng ignores them.
    """
    if kind in _PNG_COLOUR:
        return len(body) == _PNG_COLOUR[kind]
    if kind == b"sBIT":
        return len(body) == _PNG_SBIT_LENGTH.get(colour_type)
    if kind == b"PLTE":  # for true colour, a palette is only a suggestion to old displays
        return colour_type == 3 and 0 < len(body) <= 768 and len(body) % 3 == 0
    if kind == b"tRNS" and colour_type == 3:
        return 0 < len(body) <= len(kept.get(b"PLTE", b"")) // 3
    if kind == b"tRNS":
        return len(body) == _PNG_TRNS_LENGTH.get(colour_type)
    return False


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(kind, body) of each whole chunk with a good CRC; a bad one is fatal only if critical."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError("not a PNG file")
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, end = data[pos + 4 : pos + 8], pos + 12 + length
        if end > len(data):
            return  # cut short: whether the pixels are whole is checked on the pixel stream
        body = data[pos + 8 : end - 4]
        if zlib.crc32(kind + body) == struct.unpack_from(">I", data, end - 4)[0]:
            yield kind, body
        elif kind in (b"IHDR", b"PLTE", b"IDAT"):
            raise ImageError(f"the PNG file is corrupt (bad checksum in {kind.decode('latin-1')})")
        pos = end


def _raw_size(ihdr: bytes) -> int:
    """Bytes of filtered scanlines the header promises (all seven passes when interlaced)."""
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    bits = depth * _PNG_CHANNELS.get(colour_type, 0)
    if bits == 0:
        raise ImageError("the PNG header is malformed")
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if columns > 0 and rows > 0:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


def _pixel_stream(idat: bytes, raw_size: int) -> bytes:
    """The zlib stream of the pixels, without what follows it; it must inflate to ``raw_size``."""
    inflater = zlib.decompressobj()
    pending, produced = idat, 0
    while pending and not inflater.eof:
        produced += len(inflater.decompress(pending, 1 << 20))  # bounded: no zlib bomb
        if produced > raw_size:
            raise ImageError("the PNG holds more image data than its size needs")
        pending = inflater.unconsumed_tail
    if not inflater.eof or produced != raw_size:
        raise ImageError("the PNG file is truncated (its image data is incomplete)")
    return idat[: len(idat) - len(inflater.unused_data)]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# --- WebP ------------------------------------------------------------------------------------


def _strip_webp(data: bytes, icc_profile: bytes | None) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ImageError("not a WebP file")
    found: dict[bytes, bytes] = {}
    riff_end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    pos = 12
    while pos + 8 <= riff_end:
        kind = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 8 + length > riff_end:
            raise ImageError("the WebP file is truncated")
        if kind in (b"ANIM", b"ANMF"):
            raise ImageError("animated images are not accepted")
        found.setdefault(kind, data[pos + 8 : pos + 8 + length])
        pos += 8 + length + (length & 1)
    image = next(((k, found[k]) for k in (b"VP8 ", b"VP8L") if k in found), None)
    if image is None:
        raise ImageError("the WebP file has no image data")
    vp8x = found.get(b"VP8X")
    if vp8x is None:
        return _riff([image])  # the simple format: one image chunk, nothing else allowed
    if len(vp8x) != 10:
        raise ImageError("the WebP file has a malformed header")
    icc = icc_profile or b""
    flags = (vp8x[0] & _WEBP_ALPHA) | (_WEBP_ICC if icc else 0)
    chunks = [(b"VP8X", bytes([flags, 0, 0, 0]) + vp8x[4:])]
    if icc:
        chunks.append((b"ICCP", icc))
    if image[0] == b"VP8 " and b"ALPH" in found:
        chunks.append((b"ALPH", found[b"ALPH"]))
    return _riff([*chunks, image])


def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WEBP" + b"".join(
        kind + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1)
        for kind, data in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body
