"""Configuration: presets, validation errors naming the key, .env.example in step, no secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from imgbot.config.settings import Settings, load_settings
from imgbot.errors import ConfigError
from tests.conftest import CliRunner, run_cli

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"s3_access_key": "AKIDEXAMPLE", "s3_secret_key": "very-secret-value-123"}


def _env_example_comments() -> dict[str, str]:
    """Each key of .env.example with the comment lines right above it, joined (section rules and
    the file's header excluded)."""
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    comments: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Z0-9_]+)=", line)
        if not match:
            continue
        block: list[str] = []
        for above in reversed(lines[:index]):
            if not above.startswith("# ") or above.startswith("# ---"):
                break
            block.insert(0, above[2:])
        assert match.group(1) not in comments, f"{match.group(1)} is listed twice"
        comments[match.group(1)] = " ".join(" ".join(block).split())
    return comments


def test_env_example_lists_exactly_the_settings() -> None:
    """Every settings field has one commented line in .env.example, and nothing else is there."""
    comments = _env_example_comments()
    assert sorted(comments) == sorted(name.upper() for name in Settings.model_fields)
    assert all(comments.values()), [key for key, text in comments.items() if not text]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_env_example_comment_is_the_field_docstring(name: str) -> None:
    """The comment above each key in .env.example says what the field's docstring says."""
    docstring = " ".join((Settings.model_fields[name].description or "").split())
    assert _env_example_comments()[name.upper()] == docstring


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
        ({"max_jpeg_scans": 5}, "MAX_JPEG_SCANS"),
        ({"picture_workers": 0}, "PICTURE_WORKERS"),
        ({"picture_cpu_seconds": 0}, "PICTURE_CPU_SECONDS"),
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


@pytest.fixture
def config_error(monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner) -> Any:
    """Run the CLI in this process with ``env`` set (S3 keys too unless given) and ``args``
    (``url KEY`` by default); assert exit 2 with one line on stderr; return that line."""

    def run(env: dict[str, str], *args: str, keys: bool = True) -> str:
        if keys:
            monkeypatch.setenv("S3_ACCESS_KEY", "a")
            monkeypatch.setenv("S3_SECRET_KEY", "b")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        done = cli_here(*(args or ("url", "imagegen/x.png")))
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        return lines[0]

    return run


def test_cli_config_error_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m imgbot` with a bad setting exits 2 with one line naming the key, no traceback."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")
    monkeypatch.setenv("S3_BUCKET", "Bad_Bucket!")
    done = run_cli("url", "imagegen/x.png")
    assert done.returncode == 2
    assert done.stderr.startswith("imgbot: configuration error: S3_BUCKET: ")
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


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
def test_cli_exit_2_names_key(env: dict[str, str], key: str, config_error: Any) -> None:
    """The CLI exits 2 with one line naming the key."""
    assert config_error(env, keys=False).startswith(f"imgbot: configuration error: {key}: ")


def test_pixel_limit_bounded_by_pillows() -> None:
    """MAX_IMAGE_PIXELS may not exceed Pillow's own bomb limit, which would silently win."""
    from PIL import Image

    assert load_settings(**KEYS, max_image_pixels=Image.MAX_IMAGE_PIXELS).max_image_pixels
    with pytest.raises(ConfigError, match="MAX_IMAGE_PIXELS"):
        load_settings(**KEYS, max_image_pixels=Image.MAX_IMAGE_PIXELS + 1)


URL_KEYS = [
    "S3_ENDPOINT",
    "S3_PUBLIC_ENDPOINT",
    "PUBLIC_BASE_URL",
    "DINGTALK_OPENAPI_ENDPOINT",
    "DINGTALK_OAPI_ENDPOINT",
    "DASHSCOPE_BASE_URL",
    "OPENAI_BASE_URL",
]


@pytest.mark.parametrize("key", URL_KEYS)
def test_userinfo_in_urls_refused_without_echoing_it(key: str, config_error: Any) -> None:
    """user:pass@ in any URL setting is refused at load; the password is never shown."""
    line = config_error({key: "https://bob:hunter2-secret@host.example.com"})
    assert line.startswith(f"imgbot: configuration error: {key}: ")
    assert "hunter2-secret" not in line and "bob" not in line


@pytest.mark.parametrize("key", URL_KEYS)
@pytest.mark.parametrize("port", ["99999", "abc", "0", "-1"])
def test_bad_ports_refused_at_load(key: str, port: str, config_error: Any) -> None:
    """An out-of-range or non-numeric port is one line naming the key, for every URL setting."""
    line = config_error({key: f"https://img.example.com:{port}"})
    assert f"{key}: " in line and "port" in line


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (("doctor",), {"S3_ENDPOINT": "http://127.0.0.1:abc"}),
        (("publish", "/nonexistent.png"), {"S3_PUBLIC_ENDPOINT": "https://img.example.com:99999"}),
        (("draw", "猫"), {"S3_PUBLIC_ENDPOINT": "https://img.example.com:abc"}),
    ],
)
def test_bad_port_stops_every_command_before_work(
    command: tuple[str, ...], env: dict[str, str], config_error: Any
) -> None:
    """doctor, publish and draw refuse a bad port before any network call or upload."""
    line = config_error(env, *command)
    assert next(iter(env)) in line


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PUBLIC_BASE_URL", "https://cdn.example.com/img?x=1"),
        ("PUBLIC_BASE_URL", "https://cdn.example.com/img#frag"),
        ("DASHSCOPE_BASE_URL", "https://dashscope.aliyuncs.com?a=b"),
        ("OPENAI_BASE_URL", "x"),
        ("DASHSCOPE_BASE_URL", "ftp://dashscope.aliyuncs.com"),
        ("S3_ENDPOINT", "https://s3.example.com/path"),
    ],
)
def test_url_shape_refused(key: str, value: str) -> None:
    """Queries, fragments, non-http schemes and paths where an origin is needed name the key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**KEYS, **{key.lower(): value})
    assert caught.value.key == key


def test_base_urls_with_paths_accepted() -> None:
    """Provider base URLs and PUBLIC_BASE_URL may carry a path; trailing slashes are dropped."""
    settings = load_settings(
        **KEYS,
        openai_base_url="https://proxy.example.com:8443/openai/v1/",
        public_base_url="https://cdn.example.com/img/",
    )
    assert settings.openai_base_url == "https://proxy.example.com:8443/openai/v1"
    assert settings.public_base_url == "https://cdn.example.com/img"


@pytest.mark.parametrize("prefix", ["../", "./", "a/../b/", "a/./", "imagegen/../"])
def test_prefix_with_dot_segments_refused(prefix: str) -> None:
    """S3_PREFIX may not hold '.' or '..' segments (keys would escape the lifecycle rule)."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**KEYS, s3_prefix=prefix)
    assert caught.value.key == "S3_PREFIX"


@pytest.mark.parametrize("size", ["１０２４x１０２４", "١٠٢٤x١٠٢٤", "1024x１０２４", "𝟏𝟎𝟐𝟒x1024"])
def test_image_size_needs_ascii_digits(size: str) -> None:
    """IMAGE_SIZE with full-width, Arabic-Indic or other non-ASCII digits is refused."""
    with pytest.raises(ConfigError) as caught:
        load_settings(**KEYS, image_size=size)
    assert caught.value.key == "IMAGE_SIZE"


def test_generator_timeout_longer_than_request_timeout_refused(config_error: Any) -> None:
    """A generation allowed longer than the whole request is refused, naming both keys."""
    line = config_error({"GENERATOR_TIMEOUT_SECONDS": "300", "REQUEST_TIMEOUT_SECONDS": "180"})
    assert "GENERATOR_TIMEOUT_SECONDS" in line and "REQUEST_TIMEOUT_SECONDS" in line
    settings = load_settings(**KEYS, generator_timeout_seconds=180, request_timeout_seconds=180)
    assert settings.generator_timeout_seconds == settings.request_timeout_seconds


def test_openapi_endpoint_defaults_to_dingtalk() -> None:
    """DINGTALK_OPENAPI_ENDPOINT defaults to DingTalk's own origin, a plain string."""
    assert load_settings(**KEYS).dingtalk_openapi_endpoint == "https://api.dingtalk.com"
