"""Settings read once from the environment or ``.env``, with provider presets and validation.

Every field below has an environment key of the same name in upper case; ``.env.example``
documents each one (a test keeps the two in step). ``load_settings()`` turns any problem into one
``ConfigError`` naming the key.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgbot.errors import ConfigError
from imgbot.models import Size

MAX_SIGV4_TTL = 604_800  # SigV4 presigned URLs are valid for at most seven days
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COS_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*-\d{6,}$")
_REGION_RE = re.compile(r"^[a-z0-9-]{2,40}$")
_SIZE_RE = re.compile(r"^(\d{2,5})[x*](\d{2,5})$")

Provider = Literal["minio", "cos", "s3"]


def _http_origin(value: str) -> str:
    """Return ``value`` without a trailing slash if it is an http(s) origin, else raise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be an origin without a path (signatures cover the path): {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    """imgbot's configuration; see ``.env.example`` for each key."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    s3_provider: Provider = "minio"
    """Storage preset: minio, cos (Tencent COS) or s3 (any other S3)."""
    s3_endpoint: str | None = None
    """Where the bot uploads; default http://127.0.0.1:9000 for minio, derived for cos."""
    s3_public_endpoint: str | None = None
    """Origin chat clients reach; links are signed for it. Default: S3_ENDPOINT."""
    s3_region: str | None = None
    """Signing region; us-east-1 by default, required for cos (e.g. ap-guangzhou)."""
    s3_bucket: str = "imgbot"
    """Bucket name; for cos name-APPID."""
    s3_access_key: SecretStr
    """Access key id."""
    s3_secret_key: SecretStr
    """Secret access key."""
    s3_prefix: str = "imagegen/"
    """Key prefix that the lifecycle rule covers."""
    s3_addressing_style: Literal["path", "virtual"] | None = None
    """path (minio, s3) or virtual (cos) unless set."""
    s3_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Connect and read timeout of one storage call."""
    image_retention_days: int = Field(default=7, ge=1, le=3650)
    """Days after which the lifecycle rule deletes images."""
    presign_ttl_seconds: int | None = Field(default=None, ge=60)
    """Link lifetime; default the retention, never more than 604800 (SigV4's limit)."""
    public_base_url: str | None = None
    """When set, links are PUBLIC_BASE_URL/key (a public-read prefix behind a CDN)."""

    dingtalk_client_id: str | None = None
    """DingTalk Stream AppKey."""
    dingtalk_client_secret: SecretStr | None = None
    """DingTalk Stream AppSecret."""
    dingtalk_openapi_endpoint: str | None = None
    """DingTalk OpenAPI origin; the SDK's own variable, set by the simulator."""

    image_generator: Literal["placeholder", "dashscope", "openai"] = "placeholder"
    """Which generator draws pictures."""
    dashscope_api_key: SecretStr | None = None
    """DashScope API key."""
    dashscope_base_url: str = "https://dashscope.aliyuncs.com"
    """DashScope origin."""
    dashscope_model: str = "wan2.2-t2i-flash"
    """DashScope text-to-image model."""
    openai_api_key: SecretStr | None = None
    """Key of the OpenAI-compatible images API."""
    openai_base_url: str = "https://api.openai.com/v1"
    """Base URL of the OpenAI-compatible images API."""
    openai_image_model: str | None = None
    """Model name for the OpenAI-compatible images API."""
    image_size: str = "1024x1024"
    """Requested picture size, WIDTHxHEIGHT."""
    generator_timeout_seconds: float = Field(default=120.0, gt=0, le=1800)
    """Total time one generation may take."""

    max_prompt_chars: int = Field(default=1000, ge=1, le=100_000)
    """Longer prompts are refused with a clear reply."""
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest image file accepted for publishing or from a generator."""
    # At most Pillow's own bomb limit (PIL.Image.MAX_IMAGE_PIXELS): above it Pillow refuses first.
    max_image_pixels: int = Field(default=40_000_000, ge=1024, le=89_478_485)
    """Largest image (width x height) decoded, at most 89478485; larger ones are refused."""
    preview_max_side: int = Field(default=1280, ge=64, le=4096)
    """Long side of the preview in pixels."""
    preview_format: Literal["jpeg", "webp"] = "jpeg"
    """Preview encoding."""
    preview_quality: int = Field(default=92, ge=30, le=95)
    """Preview encoder quality."""

    max_concurrent_generations: int = Field(default=4, ge=1, le=256)
    """Generations that may run at once in the bot; more get a busy answer."""
    max_queued_requests: int = Field(default=16, ge=0, le=10_000)
    """Requests that may wait for a generation slot; beyond that the answer is "busy"."""
    user_requests_per_minute: int = Field(default=6, ge=1, le=10_000)
    """Requests one user may make per minute."""
    reply_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Timeout of one reply HTTP call to DingTalk."""
    reply_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts of one reply (5xx and network errors are retried)."""
    request_timeout_seconds: float = Field(default=180.0, gt=0, le=3600)
    """Total time the bot spends on one message before answering with a failure."""
    shutdown_grace_seconds: float = Field(default=5.0, ge=0, le=300)
    """On SIGTERM, time given to in-flight requests before they are cancelled."""

    metrics_host: str = "127.0.0.1"
    """Address of /metrics and /healthz while imgbot run runs."""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    """Port of /metrics and /healthz; 0 turns them off."""
    simulator_host: str = "127.0.0.1"
    """Address of the simulator and its chat page (imgbot simulate)."""
    simulator_port: int = Field(default=8790, ge=0, le=65535)
    """Port of the simulator and its chat page; 0 picks a free one."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level."""

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (not value.endswith("/") or value.startswith("/") or "//" in value):
            raise ValueError("must look like 'imagegen/' (no leading slash, ends with '/')")
        if not re.fullmatch(r"[A-Za-z0-9/_.-]*", value):
            raise ValueError("may hold only letters, digits, '/', '_', '.', '-'")
        return value

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: str) -> str:
        match = _SIZE_RE.match(value.strip())
        if not match or not all(64 <= int(g) <= 4096 for g in match.groups()):
            raise ValueError("must be WIDTHxHEIGHT with sides from 64 to 4096, e.g. 1024x1024")
        return f"{match.group(1)}x{match.group(2)}"

    @field_validator("s3_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION_RE.match(value):
            raise ValueError(f"is not a region name: {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """Treat ``KEY=`` in .env as unset, so optional keys may be listed empty."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data

    @model_validator(mode="after")
    def _presets(self) -> Settings:
        if self.s3_provider == "cos":
            if not self.s3_region:
                raise ValueError("S3_REGION: required for cos, e.g. ap-guangzhou")
            if not _COS_BUCKET_RE.match(self.s3_bucket):
                raise ValueError(f"S3_BUCKET: cos buckets are name-APPID, got {self.s3_bucket!r}")
        if not _BUCKET_RE.match(self.s3_bucket) or ".." in self.s3_bucket:
            raise ValueError(
                f"S3_BUCKET: {self.s3_bucket!r} is not a valid bucket name "
                "(3-63 lowercase letters, digits, '-' or '.')"
            )
        for key in (
            "s3_endpoint",
            "s3_public_endpoint",
            "public_base_url",
            "dingtalk_openapi_endpoint",
        ):
            value = getattr(self, key)
            if value is not None:
                try:
                    _http_url(value) if key == "public_base_url" else _http_origin(value)
                except ValueError as exc:
                    raise ValueError(f"{key.upper()}: {exc}") from None
        if self.dingtalk_client_id and self.dingtalk_client_secret is None:
            raise ValueError("DINGTALK_CLIENT_SECRET: required when DINGTALK_CLIENT_ID is set")
        return self

    # Derived values ---------------------------------------------------------------------------

    @cached_property
    def region(self) -> str:
        """The signing region."""
        return self.s3_region or "us-east-1"

    @cached_property
    def endpoint(self) -> str:
        """The upload endpoint, with the provider preset applied."""
        if self.s3_endpoint:
            return self.s3_endpoint.rstrip("/")
        if self.s3_provider == "cos":
            return f"https://cos.{self.region}.myqcloud.com"
        if self.s3_provider == "s3":
            return f"https://s3.{self.region}.amazonaws.com"
        return "http://127.0.0.1:9000"

    @cached_property
    def public_endpoint(self) -> str:
        """The origin links are signed for."""
        return (self.s3_public_endpoint or self.endpoint).rstrip("/")

    @cached_property
    def addressing_style(self) -> Literal["path", "virtual"]:
        """S3 addressing style, per provider unless overridden."""
        if self.s3_addressing_style:
            return self.s3_addressing_style
        return "virtual" if self.s3_provider == "cos" else "path"

    @cached_property
    def presign_ttl_cap(self) -> int:
        """The longest a link may live: the retention (never outlive objects), at most 604800 s."""
        return min(self.image_retention_days * 86_400, MAX_SIGV4_TTL)

    @cached_property
    def presign_ttl(self) -> int:
        """Link lifetime in seconds: PRESIGN_TTL_SECONDS (default the retention), clamped."""
        return min(self.presign_ttl_seconds or self.presign_ttl_cap, self.presign_ttl_cap)

    @cached_property
    def size(self) -> Size:
        """IMAGE_SIZE as a value."""
        width, height = self.image_size.split("x")
        return Size(int(width), int(height))

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction."""
        fields = (
            self.s3_secret_key,
            self.dingtalk_client_secret,
            self.dashscope_api_key,
            self.openai_api_key,
        )
        return [f.get_secret_value() for f in fields if f is not None]

    @property
    def has_dingtalk_credentials(self) -> bool:
        """True when the bot should talk to real DingTalk rather than the simulator."""
        return bool(self.dingtalk_client_id and self.dingtalk_client_secret)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``.env``; raise ConfigError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc) from None


def _config_error(exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if location:
        key = location[0].upper()
        problem = "missing (required)" if error["type"] == "missing" else message
        return ConfigError(key, problem)
    key, _, problem = message.partition(": ")
    return ConfigError(key, problem or message)
