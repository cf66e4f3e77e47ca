"""prepare_edit's fitted copy: any accepted picture comes out as the edit API's spec asks (sides,
bytes, form)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgbot.errors import ImageError
from imgbot.generators.dashscope import QWEN_EDIT, WANX_EDIT
from imgbot.generators.openai_images import edit_spec
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.images.renditions import prepare_edit
from imgbot.models import EditSpec
from tests.images import MARKER, default_limits, encode, fitted, phone_jpeg, photo_like

SPECS = {
    "qwen-image-edit": QWEN_EDIT,
    "wanx2.1-imageedit": WANX_EDIT,
    "dall-e-2": edit_spec("dall-e-2"),
    "gpt-image-1": edit_spec("gpt-image-1"),
    "placeholder": PlaceholderGenerator.edits,
}


def check_fits(data: bytes, spec: EditSpec) -> Image.Image:
    """Assert ``data`` keeps to ``spec``; return it decoded."""
    assert len(data) <= spec.max_bytes
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == spec.format
    assert all(spec.min_side <= side <= spec.max_side for side in image.size), image.size
    if spec.square:
        assert image.width == image.height
    return image


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_phone_photo_fits_every_spec(name: str) -> None:
    """A 4000x3000 JPEG is scaled into each model's sides and bytes, keeping its aspect (or
    padded to a square for dall-e-2)."""
    spec = SPECS[name]
    assert spec is not None
    image = check_fits(fitted(phone_jpeg(), spec), spec)
    if not spec.square:
        assert abs(image.width / image.height - 4 / 3) < 0.01
        assert image.width == min(4000, spec.max_side)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("size", [(100, 80), (90, 4000), (5000, 300)], ids=str)
def test_small_and_extreme_pictures_fit(name: str, size: tuple[int, int]) -> None:
    """Too small pictures are scaled up and padded; very long ones scaled and padded to fit."""
    spec = SPECS[name]
    assert spec is not None
    picture = Image.merge("RGB", [Image.radial_gradient("L").resize(size)] * 3)
    check_fits(fitted(encode(picture), spec), spec)


def test_too_heavy_for_the_byte_limit_is_scaled_down_further() -> None:
    """When the encoding at the largest side is over the byte limit, the picture gets smaller."""
    noise = encode(Image.effect_noise((1600, 1200), 90).convert("RGB"))
    spec = EditSpec(min_side=64, max_side=1600, max_bytes=600_000)
    image = check_fits(fitted(noise, spec), spec)
    assert image.width < 1600


def test_impossible_fit_is_an_image_error() -> None:
    """A limit no allowed size can meet is an ImageError, not a loop or a provider refusal."""
    noise = encode(Image.effect_noise((800, 800), 90).convert("RGB"))
    with pytest.raises(ImageError, match="smaller than"):
        fitted(noise, EditSpec(min_side=700, max_side=800, max_bytes=2048))


def test_transparency_is_kept_in_png_and_laid_on_white_in_jpeg() -> None:
    """An RGBA picture stays RGBA for a PNG spec; for a JPEG spec it is flattened on white."""
    rgba = Image.new("RGBA", (600, 400), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 300, 400))
    data = encode(rgba)
    as_png = Image.open(io.BytesIO(fitted(data, SPECS["gpt-image-1"])))
    assert as_png.mode == "RGBA" and as_png.getpixel((500, 200))[3] == 0
    as_jpeg = Image.open(io.BytesIO(fitted(data, QWEN_EDIT))).convert("RGB")
    assert all(channel > 240 for channel in as_jpeg.getpixel((as_jpeg.width - 5, 200)))


def test_sixteen_bit_grey_keeps_its_tones_for_the_provider() -> None:
    """A 16-bit grey gradient sent as JPEG keeps its dark and light ends (not clipped to white)."""
    ramp = b"".join((v * 257).to_bytes(2, "little") for v in range(256))
    source = encode(Image.frombytes("I;16", (256, 1), ramp).resize((512, 512)), "PNG")
    image = Image.open(io.BytesIO(fitted(source, QWEN_EDIT))).convert("L")
    assert image.getextrema()[0] < 20 and image.getextrema()[1] > 235


def test_a_turned_jpeg_is_sent_upright() -> None:
    """A JPEG with EXIF Orientation 6 (a portrait shot held sideways) is sent as portrait."""
    image = check_fits(fitted(phone_jpeg(orientation=6), QWEN_EDIT), QWEN_EDIT)
    assert image.height > image.width


def test_nothing_of_the_uploads_metadata_is_sent() -> None:
    """A comment, EXIF and text chunks of the upload do not reach the provider."""
    exif = Image.Exif()
    exif[0x010F] = MARKER.decode()
    jpeg = encode(photo_like(512), "JPEG", exif=exif.tobytes(), comment=MARKER)
    png = encode(photo_like(512), "PNG", pnginfo=_text_chunk())
    for data in (jpeg, png):
        for spec in (QWEN_EDIT, SPECS["gpt-image-1"]):
            assert MARKER not in fitted(data, spec)


def test_prepare_edit_gives_the_stored_original_and_the_fitted_copy() -> None:
    """One intake gives the original without metadata (for the bucket) and the fitted copy."""
    exif = Image.Exif()
    exif[0x010F] = MARKER.decode()
    upload = encode(photo_like(512), "JPEG", exif=exif.tobytes())
    intake = prepare_edit(upload, default_limits(), QWEN_EDIT)
    assert MARKER not in intake.original.data and intake.original.ext == "jpg"
    assert Image.open(io.BytesIO(intake.fitted)).size == (intake.size.width, intake.size.height)


def _text_chunk():  # type: ignore[no-untyped-def]
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", MARKER.decode())
    return info


def test_band_wise_shrinking_equals_one_whole_reduce() -> None:
    """The band-by-band reduction gives exactly the pixels of Pillow's reduce of the whole."""
    from imgbot.images.fitting import _shrunk

    alpha = Image.linear_gradient("L").resize((4000, 3000))
    rgba = Image.merge("RGBA", (alpha, alpha.rotate(180), Image.new("L", (4000, 3000), 90), alpha))
    shrunk = _shrunk(rgba, (500, 400))
    assert shrunk.size == (800, 600)
    assert shrunk.tobytes() == rgba.reduce(5).tobytes()
