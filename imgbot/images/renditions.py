"""Image validation and the two stored renditions: the original without metadata, and a preview.

The preview is what the chat shows, so it is made as light as it can be while it still looks like
the picture: a JPEG (or WebP) at PREVIEW_QUALITY, or the original itself when that is a picture
every client displays as it is and it weighs no more than its preview would.

Synchronous (Pillow, and a child process for the JPEG transcode): the pipeline runs ``prepare`` in
a thread of its own and a user's picture's ``prepare_edit`` in a child process
(``imgbot.images.workers``). Nothing here reads settings: ``ImageLimits`` carries them in.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from imgbot.errors import ImageError
from imgbot.images.fitting import fit_image
from imgbot.images.jpeg_scans import check_scans
from imgbot.images.modes import eight_bit, has_alpha, on_white
from imgbot.images.strip_metadata import strip_metadata
from imgbot.models import EditSpec, PreparedImage, Rendition, Size

# MPO is how Pillow names a JPEG carrying extra pictures (many phone photos): stored as JPEG.
_ACCEPTED = {
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
_PREVIEW = {"jpeg": ("jpg", "image/jpeg", "JPEG"), "webp": ("webp", "image/webp", "WEBP")}
# How to draw an EXIF-oriented picture upright (the same table as Pillow's exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow raises on broken files, besides OSError; Warning too, for runs with -W error.
_COMPARE_BAND_BYTES = 4 * 1024 * 1024
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, Warning)

# Pillow warns about broken files (an invalid APNG, a malformed MPO index, corrupt EXIF, a size
# above its bomb limit) and carries on; our own checks decide what is refused, so the notes would
# only break the CLI's one-line answers. A filter set once here, rather than catch_warnings around
# each call: that swaps process-wide state and is not thread-safe before Python 3.14.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an accepted image may be, and how its preview is made (values from Settings)."""

    max_bytes: int
    max_pixels: int
    preview_max_side: int
    preview_format: str
    preview_quality: int
    max_jpeg_scans: int
    """More scans than this and a JPEG is refused before it is decoded (``jpeg_scans``)."""
    cpu_seconds: int
    """CPU time the JPEG transcoder's child process may use."""

    def __post_init__(self) -> None:
        # Pillow refuses anything above its own bomb limit before our check could allow it.
        pillows = Image.MAX_IMAGE_PIXELS
        if pillows is not None and self.max_pixels > pillows:
            raise ValueError(f"max_pixels may be at most Pillow's limit of {pillows}")


def prepare(data: bytes, limits: ImageLimits) -> PreparedImage:
    """Validate ``data`` and return the original (metadata removed) and its preview.

    The original is decoded again and must give exactly the pixels of the upload. Orientation
    follows what browsers do: every one applies a JPEG's EXIF Orientation, so a JPEG keeps that
    one tag and its preview is drawn upright; for PNG and WebP they disagree (Chromium applies it
    to PNG only, Firefox reportedly to neither, WebKit to WebP), so neither rendition is turned.
    """
    image = open_image(data, limits)
    plan = _plan_original(data, image)
    original, orientation = _checked_original(data, plan, limits), plan.orientation
    upright = image.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else image
    preview = make_preview(upright, limits)
    if _shows_as_is(image, orientation, limits) and len(original.data) <= len(preview.data):
        preview = original
    return PreparedImage(original, preview)


def prepare_edit(data: bytes, limits: ImageLimits, spec: EditSpec) -> EditInput:
    """Validate a user's picture as ``prepare`` does and make both forms an edit needs.

    The picture is decoded once; the fitted copy for the provider (upright, as the chat showed
    it) is made from it, and it is let go before the stored copy is decoded to be checked, so the
    two full-size pictures are never in memory together.
    """
    image = open_image(data, limits)
    plan = _plan_original(data, image)
    fitted, size = fit_image(image, spec, _UPRIGHT.get(plan.orientation))
    del image
    return EditInput(_checked_original(data, plan, limits), fitted, size)


@dataclass(frozen=True, slots=True)
class _Pixels:
    """What the stored copy must show: the decoded upload's form and a digest of its samples
    (kept instead of the upload itself, which may then be let go)."""

    mode: str
    size: tuple[int, int]
    transparency: object
    palette: list[int] | None
    digest: bytes


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the upload is stored: its format, what is written back, and how it is checked."""

    kind: str
    orientation: int
    icc: bytes | None
    decode: bool
    pixels: _Pixels


def _plan_original(data: bytes, image: Image.Image) -> _Plan:
    kind = "JPEG" if image.format == "MPO" else str(image.format)
    orientation = _jpeg_orientation(image) if kind == "JPEG" else 1
    icc = image.info.get("icc_profile")
    decode = kind != "PNG" or _animation_chunks(data)
    pixels = _Pixels(
        image.mode,
        image.size,
        image.info.get("transparency"),
        image.getpalette() if decode else None,
        _digest(image) if decode else b"",
    )
    return _Plan(kind, orientation, icc if isinstance(icc, bytes) else None, decode, pixels)


def _checked_original(data: bytes, plan: _Plan, limits: ImageLimits) -> Rendition:
    """The upload rebuilt without metadata, checked to show exactly the planned pixels."""
    ext, content_type = _ACCEPTED[plan.kind]
    stored = strip_metadata(
        data, plan.kind, plan.icc, plan.orientation, cpu_seconds=limits.cpu_seconds
    )
    _check_same_picture(plan.pixels, stored, limits, decode=plan.decode)
    return Rendition(stored, ext, content_type)


@dataclass(frozen=True, slots=True)
class EditInput:
    """A user's picture made ready for an edit: the form we store and the form the provider gets."""

    original: Rendition
    """The upload without metadata, pixels identical (stored under the prefix)."""
    fitted: bytes
    """Scaled and re-encoded to the generator's ``EditSpec``."""
    size: Size
    """The fitted picture's width and height."""


def _shows_as_is(image: Image.Image, orientation: int, limits: ImageLimits) -> bool:
    """Whether the stored original can stand in for the preview in the chat.

    Only what a preview would show the same way: small enough, no transparency (the preview lays
    it on white, which a dark chat theme would not), no CMYK or 16-bit samples, and upright
    pixels (a turned JPEG's preview is drawn upright, which needs no client to read EXIF).
    """
    return (
        max(image.size) <= limits.preview_max_side
        and orientation == 1
        and image.mode in ("1", "L", "P", "RGB")
        and "transparency" not in image.info
    )


def _jpeg_orientation(image: Image.Image) -> int:
    """The Orientation in the JPEG's EXIF block, as browsers read it (not XMP's: they skip it)."""
    raw = image.info.get("exif")
    if not isinstance(raw, bytes):
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
        value = exif.get(0x0112, 1)
    except Exception:  # browsers ignore an EXIF block they cannot read, and so do we
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _animation_chunks(png: bytes) -> bool:
    # A substring test: a false hit in pixel data only costs a full comparison.
    return b"acTL" in png or b"fcTL" in png


def _check_same_picture(
    upload: _Pixels, stored: bytes, limits: ImageLimits, *, decode: bool
) -> None:
    """Refuse to store ``stored`` unless it shows exactly the pixels of the decoded upload.

    A rebuilt PNG keeps the upload's compressed pixel stream byte for byte (checked to inflate
    to exactly its declared size), its one header and its one palette, so comparing what the
    header says is enough there and saves a second full decode; a JPEG (re-encoded), a WebP
    (whose decoding can depend on padding) and an APNG (frames) are decoded again.
    """
    try:
        copy = open_image(stored, limits) if decode else Image.open(io.BytesIO(stored))
    except _DECODE_ERRORS:
        copy = None
    if copy is None:
        raise ImageError("the image could not be stored without changing its pixels")
    same = (
        upload.mode == copy.mode
        and upload.size == copy.size
        and upload.transparency == copy.info.get("transparency")
    )
    if decode:
        same = same and upload.palette == copy.getpalette()
        same = same and upload.digest == _digest(copy)
    if not same:
        raise ImageError("the image could not be stored without changing its pixels")


def _digest(image: Image.Image) -> bytes:
    """A digest of the picture's samples, taken a band of rows at a time: ``tobytes()`` of a
    whole 24-megapixel picture would be one more full copy in memory."""
    digest = hashlib.blake2b(digest_size=32)
    rows = max(1, _COMPARE_BAND_BYTES // (image.width * 4))  # 4 bytes a pixel at most (RGBA)
    for top in range(0, image.height, rows):
        digest.update(image.crop((0, top, image.width, min(image.height, top + rows))).tobytes())
    return digest.digest()


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open and fully decode ``data``, refusing anything but a sane PNG, JPEG or WebP."""
    if not data:
        raise ImageError("the file is empty", kind="empty")
    if len(data) > limits.max_bytes:
        raise ImageError(
            f"the file is {len(data)} bytes, more than the limit {limits.max_bytes}",
            kind="too_large",
        )
    check_scans(data, limits.max_jpeg_scans)
    try:
        image = Image.open(io.BytesIO(data))
        _check_header(image, limits)
        image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            "the image declares too many pixels (possible decompression bomb)",
            kind="too_many_pixels",
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not a PNG, JPEG or WebP image") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"the image could not be decoded ({type(exc).__name__})") from None
    return image


def _check_header(image: Image.Image, limits: ImageLimits) -> None:
    if image.format not in _ACCEPTED:
        raise ImageError(f"{image.format} images are not accepted; use PNG, JPEG or WebP")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageError(
            f"the image is {width}x{height} pixels, more than the limit of {limits.max_pixels} "
            "pixels (possible decompression bomb)",
            kind="too_many_pixels",
        )
    if image.format != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise ImageError("animated images are not accepted")


def make_preview(image: Image.Image, limits: ImageLimits) -> Rendition:
    """Encode a preview whose long side is at most ``limits.preview_max_side``."""
    ext, content_type, pil_format = _PREVIEW[limits.preview_format]
    preview = _flatten(image)
    # convert() copies the upload's info, and Pillow's JPEG encoder writes its "comment" back.
    preview.info.clear()
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
    return Rendition(buffer.getvalue(), ext, content_type)


def _flatten(image: Image.Image) -> Image.Image:
    """Return an RGB copy; transparency is laid on white as a chat client would show it."""
    image = eight_bit(image)
    return on_white(image) if has_alpha(image) else image.convert("RGB")
