"""Test pictures made on the spot: a photo-like PNG, a decompression bomb, EXIF-tagged JPEGs."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter


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
