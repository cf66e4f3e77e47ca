"""Settings read once from the environment or ``.env``, with provider presets and validation.

Every field below has an environment key of the same name in upper case; ``.env.example``
documents each one (a test keeps the two in step). ``load_settings()`` turns any problem into one
``ConfigError`` naming the key. ``.env`` is read by ``env_file.read_env_file`` alone; its values
reach pydantic-settings as values, with the environment taking precedence over them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from imgbot.config.env_file import EnvFile, read_env_file, unknown_keys
from imgbot.config.state_url import SecretUrl, check_state_url, shown_url, sqlite_path
from imgbot.config.url_rules import check_link_base, check_url
from imgbot.errors import ConfigError, UsageError
from imgbot.models import Size

MAX_SIGV4_TTL = 604_800  # SigV4 presigned URLs are valid for at most seven days
MIN_PRESIGN_TTL = 60  # shorter links expire before a chat client has loaded the picture
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COS_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*-\d{6,}$")
_REGION_RE = re.compile(r"^[a-z0-9-]{2,40}$")
_SIZE_RE = re.compile(r"^([0-9]{2,5})[x*]([0-9]{2,5})$")  # \d would take "１０２４" too

Provider = Literal["minio", "cos", "s3"]


# URL settings, and whether each must be a bare origin (see check_url).
_URL_KEYS = {
    "s3_endpoint": True,
    "s3_public_endpoint": True,
    "dingtalk_openapi_endpoint": True,
    "dingtalk_oapi_endpoint": True,
    "dashscope_base_url": False,
    "openai_base_url": False,
    "s3_usage_metrics_url": False,
}


class Settings(BaseSettings):
    """imgbot's configuration; see ``.env.example`` for each key."""

    # No env_file: load_settings passes .env's values in, so the file is read only once.
    model_config = SettingsConfigDict(
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    s3_provider: Provider = "minio"
    """Storage preset: minio (local MinIO), cos (Tencent COS) or s3 (any other S3-compatible
    service)."""
    s3_endpoint: str | None = None
    """Where the bot uploads, scheme://host[:port] with no path. Default http://127.0.0.1:9000
    (minio), https://cos.<region>.myqcloud.com (cos), https://s3.<region>.amazonaws.com (s3)."""
    s3_public_endpoint: str | None = None
    """The origin phones reach, scheme://host[:port] with no path; links are signed for this host
    (SigV4 signs Host). Default: S3_ENDPOINT."""
    s3_region: str | None = None
    """Signing region. Default us-east-1; required for cos, e.g. ap-guangzhou."""
    s3_bucket: str = "imgbot"
    """Bucket name. For cos it is name-APPID, e.g. imgbot-1250000000."""
    s3_access_key: SecretStr
    """Access key id (required). For the bot, use the least-privilege user from
    `imgbot setup --bot-user`."""
    s3_secret_key: SecretStr
    """Secret access key (required)."""
    s3_prefix: str = "imagegen/"
    """Key prefix covered by the lifecycle rule; ends with '/', no '.' or '..' segments.
    `imgbot url` signs only keys under it."""
    s3_addressing_style: Literal["path", "virtual"] | None = None
    """path or virtual addressing. Default path for minio and s3, virtual for cos."""
    s3_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Connect and read timeout of one storage call, in seconds."""
    s3_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts of one storage call (boto3's standard retries: throttling, 5xx, network). A storage
    that hangs is given up after about S3_ATTEMPTS x 2 x S3_TIMEOUT_SECONDS (connect, then read)
    plus boto3's short backoff: about 60 s with the defaults."""
    image_retention_days: int = Field(default=7, ge=1, le=3650)
    """Days after which the lifecycle rule deletes images (replaces the old cron cleanup job)."""
    retention_managed_elsewhere: str = ""
    """What deletes images older than IMAGE_RETENTION_DAYS when the storage has no lifecycle rules
    (e.g. 'cron: rclone delete --min-age 7d'); set it only when that is so. With it, `imgbot
    setup` and `imgbot doctor` accept a server without the lifecycle API. At most 200 characters,
    one line."""
    storage_usage_interval_seconds: float = Field(default=300.0, ge=0, le=86400)
    """How often the bot reads the storage server's own usage figures for its metrics, in
    seconds, never on a request's path; 0 turns it off, else at least 10."""
    s3_usage_access_key: str | None = None
    """Access key the usage figures are read with (MinIO shows the least-privilege bot user none):
    a user allowed only s3:GetBucketLocation on the bucket is enough, and is never used for links.
    Default: S3_ACCESS_KEY."""
    s3_usage_secret_key: SecretStr | None = None
    """Its secret key (required with S3_USAGE_ACCESS_KEY)."""
    s3_usage_metrics_url: str | None = None
    """A Prometheus metrics page with the server's bucket figures, read for the usage metrics
    instead of S3_PROVIDER's own source: SeaweedFS's metrics port (weed -metricsPort, or
    -s3.metricsPort of weed s3), e.g. http://127.0.0.1:9327/metrics. Whole-bucket figures only.
    Default: none."""
    presign_ttl_seconds: int | None = Field(default=None, ge=MIN_PRESIGN_TTL)
    """Link lifetime in seconds (at least 60, like `imgbot url --ttl`). Default: the retention;
    always clamped to the retention and to 604800 (SigV4's limit)."""
    public_base_url: str | None = None
    """When set (a CDN), links are PUBLIC_BASE_URL/key instead of storage links; a path of plain
    segments (letters, digits, '-', '.', '_', '~'; no '.' or '..') is allowed, a query or
    fragment is not. Without CDN_URL_AUTH the prefix is made public-read (the less
    private choice: anyone with a key's URL can load it for as long as the object lives)."""
    cdn_url_auth: Literal["tencent-a", "tencent-d"] | None = None
    """CDN URL authentication for PUBLIC_BASE_URL links (Tencent Cloud CDN / EdgeOne type A or D):
    the bucket stays private, the CDN fetches with its own back-to-origin credentials, and its edge
    checks the signed link: tencent-a or tencent-d. Set the console's validity to the link
    lifetime (PRESIGN_TTL_SECONDS)."""
    cdn_auth_key: SecretStr | None = None
    """The URL authentication key from the CDN console (required with CDN_URL_AUTH)."""

    dingtalk_client_id: str | None = None
    """Stream-mode AppKey. Without it, `make run` starts the built-in simulator instead."""
    dingtalk_client_secret: SecretStr | None = None
    """Stream-mode AppSecret."""
    dingtalk_openapi_endpoint: str = "https://api.dingtalk.com"
    """DingTalk OpenAPI origin (the SDK's own variable). Default https://api.dingtalk.com; the
    simulator sets its own."""

    image_generator: Literal["placeholder", "dashscope", "openai"] = "placeholder"
    """placeholder (offline test pictures), dashscope or openai."""
    dashscope_api_key: SecretStr | None = None
    """DashScope API key (for IMAGE_GENERATOR=dashscope)."""
    dashscope_base_url: str = "https://dashscope.aliyuncs.com"
    """DashScope base URL; a path is allowed, a query or fragment is not."""
    dashscope_model: str = "wan2.6-t2i"
    """DashScope text-to-image model. wan2.6-t2i (the default) is Model Studio's recommended Wan
    model, served in the Beijing, Singapore and Virginia regions, answered in one call, in any
    aspect from 1:4 to 4:1 (at about 1.6 to 2 megapixels). Also: wan2.5-t2i-preview;
    wan2.2-t2i-flash or wan2.2-t2i-plus (polled tasks, 512-1440 px a side; the cheapest and
    quickest); the qwen-image family, best at Chinese text inside pictures: qwen-image-plus and
    qwen-image-max (five fixed sizes), qwen-image-2.0 and qwen-image-2.0-pro (512*512 to
    2048*2048)."""
    openai_api_key: SecretStr | None = None
    """API key of the OpenAI-compatible images API (for IMAGE_GENERATOR=openai)."""
    openai_base_url: str = "https://api.openai.com/v1"
    """Base URL of the OpenAI-compatible images API; a path is allowed, a query or fragment is
    not."""
    openai_image_model: str = "gpt-image-2"
    """Model of the OpenAI-compatible images API. The default, gpt-image-2, is the GPT image
    model OpenAI serves: gpt-image-1 shut down on 2026-10-23, gpt-image-1-mini and gpt-image-1.5
    on 2026-12-01. dall-e-2 (retired by OpenAI on 2026-05-12) is kept for compatible servers that
    still serve it."""
    image_size: str = "1024x1024"
    """Picture size, WIDTHxHEIGHT, when the words ask for no shape. Words such as 横版, 竖版, 方图,
    16:9 or "landscape orientation" ask for its area in that shape; each model is asked for the
    size it takes nearest (README, "Shape from the words")."""
    generator_timeout_seconds: float = Field(default=120.0, gt=0, le=1800)
    """Total time one generation may take, in seconds; at most REQUEST_TIMEOUT_SECONDS."""
    generator_attempts: int = Field(default=4, ge=1, le=10)
    """Attempts of one provider call when it answers 429 or 5xx or the network fails."""

    max_prompt_chars: int = Field(default=1000, ge=1, le=100_000)
    """Longer prompts are refused with a clear reply."""
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest image file accepted (publish, or from a generator), in bytes."""
    # At most Pillow's own bomb limit (PIL.Image.MAX_IMAGE_PIXELS): above it Pillow refuses first.
    max_image_pixels: int = Field(default=20_000_000, ge=1024, le=89_478_485)
    """Largest image decoded, in pixels (width x height), at most 89478485 (Pillow's own bomb
    limit); larger ones are refused as decompression bombs. The default (20 megapixels, e.g.
    5472x3648) keeps four edits of the largest picture at once under 400 MB, the bot and its child
    processes together (BENCHMARKS.md)."""
    max_jpeg_scans: int = Field(default=100, ge=32, le=10_000)
    """A JPEG with more scans than this is refused before it is decoded (each scan costs the
    decoder a pass over the whole picture; real progressive JPEGs have about 10), at least 32."""
    preview_max_side: int = Field(default=1280, ge=64, le=4096)
    """Long side of the preview, in pixels."""
    preview_format: Literal["jpeg", "webp"] = "jpeg"
    """Preview encoding: jpeg or webp."""
    preview_quality: int = Field(default=80, ge=30, le=95)
    """Preview encoder quality (30-95). 80 keeps SSIMULACRA2 at 70 or more ("high quality") on
    photos, gradients and illustrations with text (BENCHMARKS.md)."""

    max_concurrent_generations: int = Field(default=4, ge=1, le=256)
    """Generations one bot process runs at once; further requests wait for a slot (up to
    MAX_QUEUED_REQUESTS), and only beyond that get a "busy" answer."""
    max_queued_requests: int = Field(default=16, ge=0, le=10_000)
    """Requests that may wait for a free generation slot, all replicas together; beyond that users
    get a "busy" answer."""
    user_requests_per_minute: int = Field(default=6, ge=1, le=10_000)
    """Requests one user may make per minute, all replicas together."""
    # OpenAI's images API takes n up to 10; more would be several calls for every provider.
    max_images_per_request: int = Field(default=4, ge=1, le=10)
    """Most pictures one message may ask for (「画4张」, "4 images"), at most 10; each counts
    against USER_REQUESTS_PER_MINUTE."""
    reply_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """Timeout of one reply HTTP call to DingTalk, in seconds."""
    reply_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts of one reply (5xx and network errors are retried, 4xx are not)."""
    reply_style: Literal["markdown", "image", "card"] = "markdown"
    """How a picture arrives: markdown (one Markdown message), image (DingTalk's own image
    message through the robot API, then a short Markdown with the original's link) or card (one
    interactive card that says 生成中… and turns into the picture; needs CARD_TEMPLATE_ID).
    image previews and enlarges on every DingTalk client; it needs the robot API permission
    (qyapi_robot_sendmsg) and an https link phones can reach. If DingTalk refuses it, the bot
    sends the Markdown reply instead and logs why."""
    dingtalk_media_upload: bool = False
    """With REPLY_STYLE=image, upload each preview to DingTalk's media store and send its media
    id as the image, so phones show it without reaching the storage (the link stays the
    fallback). The picture then also lives in DingTalk's media store, outside the bucket's
    IMAGE_RETENTION_DAYS rule, and every answer costs one upload of DingTalk's API quota. Off by
    default. With another REPLY_STYLE or PREVIEW_FORMAT=webp it does nothing, and the bot says so
    in one warning at start."""
    dingtalk_oapi_endpoint: str = "https://oapi.dingtalk.com"
    """DingTalk's older API origin, where media are uploaded (DINGTALK_MEDIA_UPLOAD). Default
    https://oapi.dingtalk.com; the simulator sets its own."""
    card_template_id: str | None = None
    """The card template of REPLY_STYLE=card (required then), from DingTalk's card platform,
    e.g. 1a2b3c4d-….schema; README lists the variables imgbot fills."""
    card_cooldown_seconds: float = Field(default=300.0, ge=0, le=86_400)
    """After DingTalk refuses a card (missing permission, QPS limit, unknown template, 5xx past
    the retries) the bot answers in Markdown and leaves the card API alone this long, in
    seconds."""
    card_update_gap_seconds: float = Field(default=0.3, ge=0, le=60)
    """Shortest time between two updates of one card, in seconds (one update in flight)."""
    request_timeout_seconds: float = Field(default=180.0, gt=0, le=3600)
    """Total time the bot spends on one message before it answers with a failure, in seconds; at
    least GENERATOR_TIMEOUT_SECONDS."""
    shutdown_grace_seconds: float = Field(default=5.0, ge=0, le=300)
    """On SIGTERM, seconds given to in-flight requests before they are cancelled."""

    metrics_host: str = "127.0.0.1"
    """Address of /metrics and /healthz while `imgbot run` runs."""
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    """Port of /metrics and /healthz; 0 turns them off."""
    simulator_host: str = "127.0.0.1"
    """Address of the simulator and its chat page (`imgbot simulate`)."""
    simulator_port: int = Field(default=8790, ge=0, le=65535)
    """Port of the simulator and its chat page; 0 picks a free port."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level: DEBUG, INFO, WARNING or ERROR."""

    # --- Pictures from users (editing) --------------------------------------------------------
    picture_download_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """Timeout of one step of fetching a user's picture from DingTalk (asking for its download
    URL, then reading it), in seconds. The picture is at most MAX_IMAGE_BYTES."""
    picture_download_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts of each step of a picture download (5xx and network errors are retried; an
    unknown or expired download code is not)."""

    picture_workers: int = Field(default=1, ge=1, le=64)
    """Users' pictures validated at once, each in a child process of its own that ends with it
    (about 200 MB at the peak for a picture of MAX_IMAGE_PIXELS; with the default, the bot and its
    children stay under 400 MB, BENCHMARKS.md). One user's pictures take turns, so others wait
    behind at most one picture of each user."""
    picture_cpu_seconds: int = Field(default=10, ge=1, le=600)
    """CPU time one user's picture may take to be validated, stored without metadata and fitted
    for the edit (its JPEG re-encoding gets as much again), in seconds; a picture that takes
    longer is stopped and refused. A 20-megapixel JPEG takes about 4 s in all (BENCHMARKS.md)."""

    # The state store --------------------------------------------------------------------------
    state_url: SecretUrl | None = None
    """Where the bot keeps claimed message ids, rate windows, the queue and accepted requests:
    sqlite:////absolute/path.db (four slashes), sqlite:///relative.db, or
    redis://[:password@]host:port/db (rediss:// for TLS; a private CA with
    ?ssl_ca_certs=/path/ca.pem), Redis 7 or later or Valkey, shared by every replica. Default:
    SQLite in $STATE_DIRECTORY/state.db under systemd, else .data/state.db. One bot process per
    SQLite file; several replicas need Redis. Shown without its password."""
    state_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    """Connect and read timeout of one state store call (Redis), and the wait for SQLite's file,
    in seconds; a store that does not answer in time counts as unavailable."""
    request_reclaim_seconds: float = Field(default=60.0, gt=0, le=3600)
    """A request whose worker stopped heart-beating this long is claimed by another worker (another
    replica, or the bot after a restart) and finished, in seconds."""
    request_max_attempts: int = Field(default=3, ge=1, le=20)
    """Claims of one request (the first and each reclaim) before the bot gives up on it and tells
    the user."""

    # Provider options for drawing -------------------------------------------------------------
    openai_image_quality: Literal["low", "medium", "high", "auto"] = "medium"
    """quality asked of GPT image models: low (quickest and cheapest, visibly rough), medium (the
    default), high or auto (the slowest and dearest)."""
    openai_output_format: Literal["jpeg", "webp", "png"] = "jpeg"
    """output_format asked of GPT image models: jpeg (the default: several times lighter than png
    in the answer and in storage, shown by every DingTalk client), webp or png."""
    openai_output_compression: int = Field(default=90, ge=0, le=100)
    """output_compression (0-100) asked of GPT image models with jpeg or webp; 90 keeps the
    original close to what png would show at a fraction of its bytes."""
    dashscope_negative_prompt: str | None = Field(default=None, max_length=500)
    """negative_prompt sent with every DashScope drawing (at most 500 characters): what pictures
    should not show, e.g. 低分辨率，文字模糊，肢体畸形. Not taken from the user's 「不要…」:
    those words stay in the prompt, where the model reads them."""
    dashscope_prompt_extend: bool = True
    """prompt_extend: DashScope rewrites the prompt with a language model before drawing (much
    better pictures from short chat prompts, about 3-4 s more); false draws the words as they
    are."""
    dashscope_watermark: bool = False
    """watermark: DashScope writes an "AI generated" mark in the picture's lower right corner."""

    # Editing a user's picture.
    openai_edit_model: str | None = None
    """Model that edits a user's picture through the OpenAI-compatible API (POST /images/edits),
    e.g. gpt-image-2, or dall-e-2 on a compatible server that still serves it. Default:
    OPENAI_IMAGE_MODEL."""
    dashscope_edit_model: str = "qwen-image-edit"
    """DashScope model that edits a user's picture: the qwen-image-edit family (qwen-image-edit,
    qwen-image-edit-plus, qwen-image-edit-max; answers at once) or wanx2.1-imageedit (a task)."""

    # Moderation before the provider, and 「我的图片」.
    blocked_words_file: Path | None = None
    """A UTF-8 file of words and phrases, one a line (blank lines and lines starting with '#'
    skipped), that refuse a prompt before any provider call, with the moderation sentence. Chinese
    entries match anywhere, spaces ignored; ASCII entries match whole words; both after width and
    case folding. Read again whenever the file changes; at most 1 MiB and 10000 entries. Unset: no
    list. A missing or unreadable file stops the start (exit 2)."""
    my_images_shown: int = Field(default=5, ge=1, le=10)
    """How many of the sender's latest pictures in a conversation 「我的图片」 (or 「最近的图」,
    "my images") lists, newest first, each with a fresh link (1-10: ten previews and their links
    fill a DingTalk message)."""

    @field_validator("retention_managed_elsewhere")
    @classmethod
    def _elsewhere(cls, value: str) -> str:
        return check_retention_note(value)

    @field_validator("storage_usage_interval_seconds")
    @classmethod
    def _usage_interval(cls, value: float) -> float:
        if 0 < value < 10:
            raise ValueError("0 (off) or at least 10 seconds")
        return value

    def with_retention_elsewhere(self, note: str) -> Settings:
        """These settings with RETENTION_MANAGED_ELSEWHERE replaced (``imgbot setup``'s flag)."""
        try:
            checked = check_retention_note(note)
        except ValueError as exc:
            raise UsageError("--retention-elsewhere", str(exc)) from None
        return self.model_copy(update={"retention_managed_elsewhere": checked})

    @model_validator(mode="after")
    def _usage_keys(self) -> Settings:
        if (self.s3_usage_access_key is None) != (self.s3_usage_secret_key is None):
            raise ValueError("S3_USAGE_ACCESS_KEY and S3_USAGE_SECRET_KEY: set both or neither")
        return self

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and (not value.endswith("/") or value.startswith("/") or "//" in value):
            raise ValueError("must look like 'imagegen/' (no leading slash, ends with '/')")
        if not re.fullmatch(r"[A-Za-z0-9/_.-]*", value):
            raise ValueError("may hold only letters, digits, '/', '_', '.', '-'")
        if any(segment in (".", "..") for segment in value.split("/")):
            raise ValueError("must not hold '.' or '..' segments")
        return value

    @field_validator(*_URL_KEYS)
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_url(value, origin=_URL_KEYS[str(info.field_name)])

    @field_validator("public_base_url")
    @classmethod
    def _link_base(cls, value: str | None) -> str | None:
        return None if value is None else check_link_base(value)

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: SecretUrl | None) -> SecretUrl | None:
        if value is not None:
            check_state_url(value.get_secret_value())
        return value

    @field_validator("card_template_id")
    @classmethod
    def _card_template(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value):
            raise ValueError(
                "must be a template id from DingTalk's card platform, e.g. 1a2b….schema"
            )
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
        if self.generator_timeout_seconds > self.request_timeout_seconds:
            raise ValueError(
                f"GENERATOR_TIMEOUT_SECONDS: {self.generator_timeout_seconds:g} s is longer than "
                f"REQUEST_TIMEOUT_SECONDS={self.request_timeout_seconds:g} s, which bounds the "
                "whole request; lower it or raise REQUEST_TIMEOUT_SECONDS"
            )
        if self.cdn_url_auth and not self.public_base_url:
            raise ValueError("PUBLIC_BASE_URL: required with CDN_URL_AUTH (the CDN's https origin)")
        if self.cdn_url_auth and not (self.cdn_auth_key and self.cdn_auth_key.get_secret_value()):
            raise ValueError("CDN_AUTH_KEY: required with CDN_URL_AUTH (from the CDN console)")
        if self.reply_style == "card" and not self.card_template_id:
            raise ValueError(
                "CARD_TEMPLATE_ID: required when REPLY_STYLE=card (the template id from "
                "DingTalk's card platform, see README)"
            )
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
        return clamp_ttl(self.presign_ttl_seconds or self.presign_ttl_cap, self.presign_ttl_cap)

    @property
    def public_read_prefix(self) -> bool:
        """True when the prefix is made public-read: PUBLIC_BASE_URL without CDN_URL_AUTH."""
        return bool(self.public_base_url) and self.cdn_url_auth is None

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
            self.cdn_auth_key,
            self.s3_usage_secret_key,
        )
        values = [f.get_secret_value() for f in fields if f is not None]
        password = urlsplit(self.state_url.get_secret_value()).password if self.state_url else None
        return [*values, password] if password else values

    @cached_property
    def state_file(self) -> Path | None:
        """The SQLite file of the state store, or None when STATE_URL names Redis."""
        return sqlite_path(self.state_url.get_secret_value() if self.state_url else None)

    @cached_property
    def state_location(self) -> str:
        """STATE_URL safe to show (no password), or the default SQLite file's URL."""
        if self.state_url is not None:
            return shown_url(self.state_url.get_secret_value())
        return f"sqlite:///{self.state_file}"

    @property
    def has_dingtalk_credentials(self) -> bool:
        """True when the bot should talk to real DingTalk rather than the simulator."""
        return bool(self.dingtalk_client_id and self.dingtalk_client_secret)


def check_retention_note(value: str) -> str:
    """RETENTION_MANAGED_ELSEWHERE as given, trimmed: one line of at most 200 characters."""
    note = value.strip()
    if len(note) > 200:
        raise ValueError("at most 200 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise ValueError("one line, no control characters")
    return note


def clamp_ttl(seconds: int, cap: int) -> int:
    """A link lifetime within (0, cap]: links never outlive their objects or SigV4's limit."""
    return max(1, min(seconds, cap))


def load_settings(*, env_file: EnvFile | None = None, **overrides: Any) -> Settings:
    """Read settings from ``overrides``, the environment and ``.env``, in that order of
    precedence; raise ConfigError naming the key.

    ``env_file`` is ``.env`` as a command already read it (``read_env_file``: a file that is not
    UTF-8 is named, not a traceback); by default it is read here.
    """
    values = read_env_file() if env_file is None else env_file
    in_environment = {key.upper() for key in os.environ}  # as pydantic-settings: any case
    from_file = {
        key.lower(): value
        for key, value in values.items()
        if value is not None
        and key.lower() in Settings.model_fields  # never pydantic-settings' own _ENV_FILE etc.
        and key.upper() not in in_environment  # the environment overrides .env
    }
    try:
        return Settings(**(from_file | overrides))
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


# Prefixes of keys imgbot reads, plus those of settings on their way; other keys in a shared .env
# (MINIO_ROOT_USER for compose) are not ours and pass silently.
_OUR_PREFIXES = tuple(
    sorted(
        {name.split("_")[0].upper() + "_" for name in Settings.model_fields} | {"STATE_", "CDN_"}
    )
)


def unknown_settings(env_file: EnvFile, environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per key of ``env_file`` (``.env`` as read) or the environment with an imgbot
    prefix that no setting reads, naming the nearest real key: a misspelled key (S3_BUKET) is
    otherwise silently ignored."""
    known = [name.upper() for name in Settings.model_fields]
    env = os.environ if environ is None else environ
    # systemd's StateDirectory= sets STATE_DIRECTORY: not a setting, but read (state_url.py).
    env = {key: value for key, value in env.items() if key.upper() != "STATE_DIRECTORY"}
    return unknown_keys(known, _OUR_PREFIXES, env, env_file)
