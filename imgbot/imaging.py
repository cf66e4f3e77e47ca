"""Image validation and the two stored renditions: the original without metadata, and a preview.

Pure and synchronous (Pillow); the pipeline calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from imgbot.errors import ImageError
from imgbot.metadata import strip_metadata, with_orientation
from imgbot.models import PreparedImage, Rendition

# MPO is how Pillow names a JPEG carrying extra pictures (many phone photos): stored as JPEG.
_ACCEPTED = {
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
_PREVIEW = {"jpeg": ("jpg", "image/jpeg", "JPEG"), "webp": ("webp", "image/webp", "WEBP")}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an accepted image may be, and how its preview is made."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    preview_max_side: int = 1280
    preview_format: str = "jpeg"
    preview_quality: int = 92


def prepare(data: bytes, limits: ImageLimits) -> PreparedImage:
    """Validate ``data`` and return the original (metadata removed) and its preview."""
    image = open_image(data, limits)
    kind = "JPEG" if image.format == "MPO" else str(image.format)
    ext, content_type = _ACCEPTED[kind]
    stripped = strip_metadata(data, kind)
    orientation = _orientation(image)
    if kind == "JPEG" and orientation != 1:
        # Phone photos are stored sideways with an EXIF Orientation tag: keep that one tag.
        stripped = with_orientation(stripped, orientation)
    original = Rendition(stripped, ext, content_type, *image.size)
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    return PreparedImage(original=original, preview=make_preview(upright, limits))


def _orientation(image: Image.Image) -> int:
    value = image.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open and fully decode ``data``, refusing anything but a sane PNG, JPEG or WebP."""
    if not data:
        raise ImageError("the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageError(f"the file is {len(data)} bytes, more than the limit {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_header(image, limits)
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            "the image declares too many pixels (possible decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not a PNG, JPEG or WebP image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image could not be decoded ({type(exc).__name__})") from None
    return image


def _check_header(image: Image.Image, limits: ImageLimits) -> None:
    if image.format not in _ACCEPTED:
        raise ImageError(f"{image.format} images are not accepted; use PNG, JPEG or WebP")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageError(
            f"the image is {width}x{height} pixels, more than the limit of {limits.max_pixels} "
            "pixels (possible decompression bomb)"
        )
    if image.format != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise ImageError("animated images are not accepted")


def make_preview(image: Image.Image, limits: ImageLimits) -> Rendition:
    """Encode a preview whose long side is at most ``limits.preview_max_side``."""
    ext, content_type, pil_format = _PREVIEW[limits.preview_format]
    preview = _flatten(image)
    if max(preview.size) > limits.preview_max_side:
        preview.thumbnail(
            (limits.preview_max_side, limits.preview_max_side),
            Image.Resampling.LANCZOS,
            reducing_gap=2.0,
        )
    buffer = io.BytesIO()
    if pil_format == "JPEG":
        preview.save(
            buffer,
            "JPEG",
            quality=limits.preview_quality,
            optimize=True,
            progressive=True,
            subsampling="4:2:0",
        )
    else:
        preview.save(buffer, "WEBP", quality=limits.preview_quality, method=4)
    return Rendition(buffer.getvalue(), ext, content_type, *preview.size)


def _flatten(image: Image.Image) -> Image.Image:
    """Return an RGB copy; transparency is laid on white as a chat client would show it."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit grey: scale to 8 bits (a plain convert would clip everything to white).
        image = image.convert("F").point(lambda v: v / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
