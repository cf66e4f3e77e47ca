"""Fitting a decoded picture to what an edit API takes: its sides, squareness, bytes and format.

Pure and synchronous (Pillow). The picture is scaled before anything else is done to it, so a
phone photo is never copied at full size: converting or turning a 12-megapixel picture first would
hold a second full copy in memory for nothing.
"""

from __future__ import annotations

import io
import math

from PIL import Image

from imgbot.errors import ImageError
from imgbot.images.modes import eight_bit, has_alpha, on_white
from imgbot.models import EditSpec, Size

_FITS = 6
"""Encodings tried, each smaller than the last, before a picture is called impossible to fit."""
_JPEG_QUALITY = 90
_BAND_BYTES = 8 * 1024 * 1024
_SHRINK_MARGIN = 0.9
"""Encoded size grows about with the pixel count; aim a little below the byte limit."""
# Modes Pillow resizes with a real filter; others (palette, 1-bit, 16-bit) are converted first.
_RESIZABLE = frozenset({"RGB", "RGBA", "L", "LA", "CMYK"})
_WHITE = (255, 255, 255)
_CLEAR = (0, 0, 0, 0)


def fit_image(
    image: Image.Image, spec: EditSpec, transpose: Image.Transpose | None = None
) -> tuple[bytes, Size]:
    """Encode ``image`` as ``spec`` asks; ``transpose`` draws it upright (a JPEG's EXIF turn).

    Too large: scaled down. Too small: scaled up as far as the long side allows, then padded (white,
    or transparent in PNG). ``square``: padded to a square. Too many bytes: scaled down further.
    Raises ``ImageError`` when even the smallest allowed picture is too heavy.
    """
    source = image if image.mode in _RESIZABLE else _convert(image, spec)
    scale = _first_scale(*source.size, spec)
    for _ in range(_FITS):
        picture = _render(source, scale, spec, transpose)
        data = _encode(picture, spec)
        if len(data) <= spec.max_bytes:
            return data, Size(*picture.size)
        scale *= math.sqrt(spec.max_bytes / len(data)) * _SHRINK_MARGIN
        if max(source.size) * scale < spec.min_side:
            break
    raise ImageError(f"the picture cannot be made smaller than {spec.max_bytes} bytes for the edit")


def _first_scale(width: int, height: int, spec: EditSpec) -> float:
    """The scale that brings both sides within [min_side, max_side], the long side first."""
    ceiling = spec.max_side / max(width, height)
    scale = min(1.0, ceiling)
    if min(width, height) * scale < spec.min_side:
        scale = min(spec.min_side / min(width, height), ceiling)
    return scale


def _render(
    source: Image.Image, scale: float, spec: EditSpec, transpose: Image.Transpose | None
) -> Image.Image:
    width, height = source.size
    target = (_side(width * scale, spec), _side(height * scale, spec))
    picture = source
    if target != source.size:
        picture = _shrunk(source, target).resize(target, Image.Resampling.LANCZOS)
    if transpose is not None:
        picture = picture.transpose(transpose)
    picture = _convert(picture, spec)
    w, h = picture.size
    if spec.square:
        w = h = max(w, h, spec.min_side)
    canvas = (max(w, spec.min_side), max(h, spec.min_side))
    if canvas != picture.size:
        picture = _pad(picture, canvas)
    if picture is source:  # nothing changed it: copy (it is small) rather than edit the caller's
        picture = picture.copy()
    # Pillow writes parts of ``info`` back (a JPEG comment, PNG text): send the colours only.
    icc = source.info.get("icc_profile")
    picture.info = {"icc_profile": icc} if isinstance(icc, bytes) and icc else {}
    return picture


def _shrunk(source: Image.Image, target: tuple[int, int]) -> Image.Image:
    """``source`` reduced by a whole factor that keeps it well above ``target``, a band of
    rows at a time; the result is what ``reduce`` gives for the whole picture (box averages of
    whole blocks), but without a full-size copy: Pillow premultiplies RGBA into a new image of the
    full size before it reduces or resizes, 160 MB for a 40-megapixel picture."""
    # At least 1.5 times the target stays for LANCZOS to filter (Pillow's own reducing_gap idea).
    factor = max(1, int(min(source.width / target[0], source.height / target[1]) / 1.5))
    if factor == 1:
        return source
    reduced = Image.new(source.mode, (source.width // factor, source.height // factor))
    rows = max(1, _BAND_BYTES // (source.width * 4 * factor)) * factor
    for top in range(0, reduced.height * factor, rows):
        bottom = min(top + rows, reduced.height * factor)
        band = source.crop((0, top, reduced.width * factor, bottom)).reduce(factor)
        reduced.paste(band, (0, top // factor))
    return reduced


def _side(value: float, spec: EditSpec) -> int:
    return max(1, min(spec.max_side, round(value)))


def _convert(image: Image.Image, spec: EditSpec) -> Image.Image:
    """``image`` in a mode ``spec.format`` stores: RGB, or RGBA for PNG with alpha or padding."""
    image = eight_bit(image)
    alpha = has_alpha(image)
    if spec.format == "PNG":
        wanted = "RGBA" if alpha or spec.square else "RGB"
        return image if image.mode == wanted else image.convert(wanted)
    if alpha:
        return on_white(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def _pad(picture: Image.Image, canvas: tuple[int, int]) -> Image.Image:
    background = Image.new(picture.mode, canvas, _CLEAR if picture.mode == "RGBA" else _WHITE)
    offset = ((canvas[0] - picture.width) // 2, (canvas[1] - picture.height) // 2)
    background.paste(picture, offset)
    return background


def _encode(picture: Image.Image, spec: EditSpec) -> bytes:
    buffer = io.BytesIO()
    if spec.format == "JPEG":
        picture.save(buffer, "JPEG", quality=_JPEG_QUALITY, subsampling="4:2:0")
    else:
        picture.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()
