"""Test pictures made on the spot: photo-like pictures, bombs, and the pieces of hostile files."""

from __future__ import annotations

import functools
import io
import random
import zlib

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from imgbot.config.settings import Settings
from imgbot.images.renditions import ImageLimits, prepare_edit
from imgbot.models import EditSpec
from imgbot.studio.pipeline import limits_from


def photo_like(size: int = 1024, seed: int = 1) -> Image.Image:
    """Smooth colour fields with soft edges and sensor-like noise: compresses like a photo."""
    rnd = random.Random(seed)
    base = Image.linear_gradient("L").resize((size, size))
    image = Image.merge("RGB", (base, base.rotate(90), base.rotate(200)))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rnd.randrange(size), rnd.randrange(size), rnd.randrange(20, 200)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(6))
    noise = Image.effect_noise((size, size), 18).convert("RGB")
    return Image.blend(image, noise, 0.12)


def gradient_like(size: int = 1024, seed: int = 1) -> Image.Image:
    """Smooth colour gradients and soft glows, no grain: compresses like a generated picture."""
    rnd = random.Random(seed)
    linear, radial = Image.linear_gradient("L"), Image.radial_gradient("L")
    image = Image.merge("RGB", (linear.rotate(30), radial, linear.rotate(250))).resize((size, size))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rnd.randrange(size), rnd.randrange(size), rnd.randrange(size // 10, size // 3)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(size / 24))


def illustration(size: int = 1024, seed: int = 1) -> Image.Image:
    """Flat colour shapes with dark outlines and lines of text: compresses like a drawing."""
    rnd = random.Random(seed)
    image = Image.new("RGB", (size, size), (250, 245, 230))
    draw = ImageDraw.Draw(image)
    outline, stroke = (25, 25, 25), max(2, size // 170)
    for _ in range(8):
        x, y, r = rnd.randrange(size), rnd.randrange(size), rnd.randrange(size // 16, size // 5)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        shape = draw.ellipse if rnd.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=colour, outline=outline, width=stroke)
    title, body = ImageFont.load_default(size // 14), ImageFont.load_default(max(10, size // 48))
    draw.rectangle((0, 0, size, size // 8), fill=(40, 90, 200))
    draw.text((size // 24, size // 40), "imgbot 0123456789", fill=(255, 255, 255), font=title)
    for line in range(4):
        text = f"The quick brown fox jumps over the lazy dog, line {line + 1}."
        draw.text((size // 24, size * (80 + 4 * line) // 100), text, fill=outline, font=body)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """Encode ``image`` in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo_png(size: int = 1024, seed: int = 1) -> bytes:
    """A photo-like PNG (about 1.3 MB at 1024x1024)."""
    return encode(photo_like(size, seed), "PNG")


def decompression_bomb() -> bytes:
    """A tiny PNG declaring 20000x20000 pixels (400 megapixels) of one colour."""
    return encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)


def jpeg_with_gps() -> bytes:
    """A JPEG carrying EXIF with GPS coordinates and a comment."""
    image = photo_like(256, seed=3)
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"  # Make
    gps = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
    exif[0x8825] = gps
    return encode(image, "JPEG", quality=90, exif=exif.tobytes(), comment=b"secret place")


# --- Building blocks for hostile files: segments, chunks and where they go -----------------------

MARKER = b"imgbot-planted-9c41"
"""A distinctive string planted in metadata; no stored original may contain it."""


def default_limits() -> ImageLimits:
    """The image limits of a default configuration (the defaults live in Settings alone)."""
    return limits_from(Settings.model_construct())


@functools.cache
def fitted(data: bytes, spec: EditSpec) -> bytes:
    """What an edit API with ``spec`` gets for the upload ``data``: ``prepare_edit``'s fitted copy
    (validated and stored first, as in the pipeline)."""
    return prepare_edit(data, default_limits(), spec).fitted


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment (APPn, COM, DQT ...) with ``body`` after its length field."""
    return b"\xff" + bytes([marker]) + (len(body) + 2).to_bytes(2, "big") + body


def jpeg_scan_offsets(jpeg: bytes) -> list[int]:
    """Offsets of every start-of-scan marker, then of the end-of-image marker."""
    offsets, pos = [], 2
    while pos < len(jpeg):
        marker = jpeg[pos + 1]
        if marker == 0xD9:
            return [*offsets, pos]
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if marker != 0xDA:
            pos += 2 + length
            continue
        offsets.append(pos)
        pos += 2 + length
        # Entropy-coded data runs to the next marker that is neither stuffing (FF00) nor RSTn.
        while not (jpeg[pos] == 0xFF and jpeg[pos + 1] not in (0x00, *range(0xD0, 0xD8))):
            pos += 1
    raise ValueError("no end-of-image marker")


def exif_block(**tags: object) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF) with a camera Make, GPS and any other tags."""
    exif = Image.Exif()
    exif[0x010F] = MARKER.decode()  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
    for key, value in tags.items():
        exif[int(key.removeprefix("tag_"), 16)] = value
    return exif.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG chunk with a correct CRC."""
    crc = zlib.crc32(kind + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + kind + body + crc


def png_chunk_offsets(png: bytes) -> dict[bytes, list[int]]:
    """Where each kind of chunk starts."""
    found: dict[bytes, list[int]] = {}
    pos = 8
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        found.setdefault(png[pos + 4 : pos + 8], []).append(pos)
        pos += 12 + length
    return found


def png_kinds(png: bytes) -> list[bytes]:
    """The chunk kinds of ``png`` in file order."""
    offsets = png_chunk_offsets(png)
    return [kind for _, kind in sorted((p, k) for k, ps in offsets.items() for p in ps)]


def webp_chunk(kind: bytes, body: bytes) -> bytes:
    """A RIFF chunk of a WebP file, padded to an even length."""
    return kind + len(body).to_bytes(4, "little") + body + b"\x00" * (len(body) & 1)


def webp_chunks(webp: bytes) -> list[tuple[bytes, bytes]]:
    """The (kind, body) chunks of a WebP file."""
    chunks, pos = [], 12
    while pos + 8 <= len(webp):
        length = int.from_bytes(webp[pos + 4 : pos + 8], "little")
        chunks.append((webp[pos : pos + 4], webp[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return chunks


def webp_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A WebP file made of ``chunks``, with the RIFF size right."""
    body = b"WEBP" + b"".join(webp_chunk(kind, data) for kind, data in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def progressive_jpeg(size: int = 96, **params: object) -> bytes:
    """A progressive JPEG of a photo-like picture (ten scans at Pillow's defaults)."""
    return encode(photo_like(size), "JPEG", quality=90, progressive=True, **params)


def quadrants(width: int = 80, height: int = 40) -> Image.Image:
    """Four flat colours (red, green / blue, yellow): shows at a glance which way is up."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 2, 0, width, height // 2), fill=(0, 255, 0))
    draw.rectangle((0, height // 2, width // 2, height), fill=(0, 0, 255))
    draw.rectangle((width // 2, height // 2, width, height), fill=(255, 255, 0))
    return image


def corner_colours(image: Image.Image) -> list[tuple[int, ...]]:
    """The colours near the four corners (top-left, top-right, bottom-left, bottom-right)."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    points = ((w // 8, h // 8), (w - 1 - w // 8, h // 8))
    points += ((w // 8, h - 1 - h // 8), (w - 1 - w // 8, h - 1 - h // 8))
    return [tuple(round(c / 64) for c in rgb.getpixel(p)) for p in points]  # type: ignore[union-attr]


def decoded(data: bytes) -> Image.Image:
    """``data`` opened and fully decoded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def same_pixels(a: bytes, b: bytes) -> bool:
    """Whether two encoded pictures decode to the same mode, size, pixels and palette."""
    x, y = decoded(a), decoded(b)
    first = (x.mode, x.size, x.tobytes(), x.getpalette(), x.info.get("transparency"))
    return first == (y.mode, y.size, y.tobytes(), y.getpalette(), y.info.get("transparency"))


@functools.cache
def phone_jpeg(width: int = 4000, height: int = 3000, orientation: int = 1) -> bytes:
    """A photo-like JPEG of a phone camera's size (12 megapixels by default), optionally turned
    by an EXIF Orientation tag."""
    image = photo_like(max(width, height)).crop((0, 0, width, height))
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    return encode(image, "JPEG", quality=92, exif=exif.tobytes())
