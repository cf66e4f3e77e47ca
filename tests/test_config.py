"""Configuration: presets, validation errors naming the key, .env.example in step, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgbot.config import Settings, load_settings
from imgbot.errors import ConfigError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"s3_access_key": "AKIDEXAMPLE", "s3_secret_key": "very-secret-value-123"}


def test_env_example_lists_exactly_the_settings() -> None:
    """Every settings field has one commented line in .env.example, and nothing else is there."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    lines = text.splitlines()
    listed = []
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Z0-9_]+)=", line)
        if match:
            listed.append(match.group(1))
            assert lines[index - 1].startswith("# "), f"{match.group(1)} has no comment"
    assert sorted(listed) == sorted(name.upper() for name in Settings.model_fields)


def test_env_example_defaults_load(tmp_path: Path) -> None:
    """.env.example itself (with keys filled in) is a valid configuration."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    text = text.replace("S3_ACCESS_KEY=\n", "S3_ACCESS_KEY=a\n")
    (tmp_path / ".env").write_text(text.replace("S3_SECRET_KEY=\n", "S3_SECRET_KEY=b\n"))
    settings = load_settings()
    assert settings.endpoint == "http://127.0.0.1:9000" and settings.presign_ttl == 604800


def test_cos_preset() -> None:
    """cos derives endpoint and virtual addressing from the region."""
    settings = load_settings(
        s3_provider="cos", s3_region="ap-guangzhou", s3_bucket="imgbot-1250000000", **KEYS
    )
    assert settings.endpoint == "https://cos.ap-guangzhou.myqcloud.com"
    assert settings.addressing_style == "virtual"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"s3_bucket": "Bad_Bucket!"}, "S3_BUCKET"),
        (
            {"s3_public_endpoint": "file:///root/project-wb/dingtalk_bot/imagegen"},
            "S3_PUBLIC_ENDPOINT",
        ),
        ({"s3_endpoint": "119.28.50.67:8090"}, "S3_ENDPOINT"),
        ({"s3_provider": "cos", "s3_bucket": "imgbot-1250000000"}, "S3_REGION"),
        ({"s3_provider": "cos", "s3_region": "ap-guangzhou", "s3_bucket": "imgbot"}, "S3_BUCKET"),
        ({"image_retention_days": 0}, "IMAGE_RETENTION_DAYS"),
        ({"presign_ttl_seconds": 10}, "PRESIGN_TTL_SECONDS"),
        ({"image_size": "1024"}, "IMAGE_SIZE"),
        ({"s3_prefix": "/imagegen"}, "S3_PREFIX"),
        ({"s3_provider": "gcs"}, "S3_PROVIDER"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, object], key: str) -> None:
    """Each bad value raises ConfigError naming its key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**{**KEYS, **overrides})
    assert caught.value.key == key


def test_ttl_clamped_to_retention_and_sigv4() -> None:
    """The link lifetime never exceeds the retention nor SigV4's 604800 s."""
    settings = load_settings(image_retention_days=2, presign_ttl_seconds=600000, **KEYS)
    assert settings.presign_ttl == 2 * 86400
    settings = load_settings(image_retention_days=30, presign_ttl_seconds=10**7, **KEYS)
    assert settings.presign_ttl == 604800


def test_secrets_not_in_repr() -> None:
    """repr of settings never shows the secret."""
    settings = load_settings(**KEYS, dingtalk_client_id="ding", dingtalk_client_secret="dsecret")
    assert "very-secret-value-123" not in repr(settings) and "dsecret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "S3_BUCKET": "Bad_Bucket!"}, "S3_BUCKET"),
        ({"S3_SECRET_KEY": "b"}, "S3_ACCESS_KEY"),
        (
            {"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "S3_PUBLIC_ENDPOINT": "file:///root/x"},
            "S3_PUBLIC_ENDPOINT",
        ),
    ],
)
def test_cli_exit_2_names_key(
    env: dict[str, str], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI exits 2 with one line naming the key, no traceback."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = run_cli("url", "imagegen/x.png")
    assert done.returncode == 2
    assert key in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_pixel_limit_bounded_by_pillows() -> None:
    """MAX_IMAGE_PIXELS may not exceed Pillow's own bomb limit, which would silently win."""
    from PIL import Image

    assert load_settings(**KEYS, max_image_pixels=Image.MAX_IMAGE_PIXELS).max_image_pixels
    with pytest.raises(ConfigError, match="MAX_IMAGE_PIXELS"):
        load_settings(**KEYS, max_image_pixels=Image.MAX_IMAGE_PIXELS + 1)
