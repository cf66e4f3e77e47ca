"""The preview the chat shows: never heavier than a displayable original, and good to look at."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from ssimulacra2 import compute_ssimulacra2

from imgbot.images.renditions import make_preview, prepare
from tests.conftest import CliRunner, set_up_bucket
from tests.images import default_limits, encode, gradient_like, illustration, photo_like

LIMITS = default_limits()
KINDS: dict[str, Callable[[int, int], Image.Image]] = {
    "photo": photo_like,
    "gradient": gradient_like,
    "illustration": illustration,
}
FORMATS = {"PNG": {}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [96, 384])
def test_preview_never_heavier_than_displayable_original(kind: str, fmt: str, size: int) -> None:
    """A PNG, JPEG or WebP within PREVIEW_MAX_SIDE never gets a preview heavier than itself."""
    prepared = prepare(encode(KINDS[kind](size, 1), fmt, **FORMATS[fmt]), LIMITS)
    assert len(prepared.preview.data) <= len(prepared.original.data)
    assert prepared.preview_is_original == (prepared.preview == prepared.original)


def test_light_illustration_shows_the_original() -> None:
    """A flat illustration whose palette PNG is lighter than its JPEG is shown as it is."""
    prepared = prepare(encode(illustration(384, 1).quantize(32)), LIMITS)
    assert prepared.preview_is_original and prepared.preview.content_type == "image/png"


def test_heavy_photo_gets_a_jpeg_preview() -> None:
    """A noisy photo PNG gets a JPEG preview, far lighter than the PNG."""
    prepared = prepare(encode(photo_like(384, 1)), LIMITS)
    assert not prepared.preview_is_original and prepared.preview.content_type == "image/jpeg"
    assert len(prepared.preview.data) < len(prepared.original.data) / 4


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(Image.new("RGBA", (200, 200), (0, 0, 0, 0)), id="transparent"),
        pytest.param(illustration(1400, 1).resize((1400, 300)), id="wider-than-max-side"),
    ],
)
def test_original_not_shown_when_the_preview_would_differ(source: Image.Image) -> None:
    """A transparent or over-wide picture still gets its own preview, however light it is."""
    prepared = prepare(encode(source), LIMITS)
    assert not prepared.preview_is_original and prepared.preview.content_type == "image/jpeg"


def _ssimulacra2(reference: Image.Image, jpeg: bytes) -> float:
    shown = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return float(compute_ssimulacra2(io.BytesIO(encode(reference)), io.BytesIO(encode(shown))))


@pytest.mark.parametrize("kind", KINDS)
def test_preview_encoding_keeps_ssimulacra2_high(kind: str) -> None:
    """The default preview encoding scores SSIMULACRA2 >= 70 ("high quality") on each kind."""
    image = KINDS[kind](256, 2)
    assert _ssimulacra2(image, make_preview(image, LIMITS).data) >= 70


@pytest.mark.minio
def test_publish_of_light_original_stores_one_object(
    s3_env: dict[str, str], tmp_path: Any, admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """When the chat shows the original, preview_key is key, url is original_url, one object."""
    set_up_bucket()
    (tmp_path / "drawing.png").write_bytes(encode(illustration(384, 1).quantize(32)))
    done = cli_here("publish", str(tmp_path / "drawing.png"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["preview_key"] == result["key"] and result["url"] == result["original_url"]
    listed = admin_s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [result["key"]]
