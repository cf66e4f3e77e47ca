"""S3-compatible object storage through boto3: the bot's data path (put, get, health probe).

Bucket administration (create, lifecycle, policy, ACL) lives in ``storage_admin``; both build their
client here and translate botocore's errors here, so there is one place for provider quirks (the
botocore ``Config``) and one for error messages, which name the operation and the S3 error code but
never credentials or signed URLs. One client is built per process (about 0.1 s each).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imgbot.config.settings import Settings
from imgbot.errors import StorageError
from imgbot.objects.keys import key_label

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
# Error codes that mean the key pair itself is wrong, not what it may do.
BAD_KEYS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "AuthorizationHeaderMalformed"}
)
SERVER_FAULTS = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "XMinioStorageFull", "InsufficientStorage"}
)
"""Error codes that mean the server itself failed (full, overloaded, broken), whatever the keys."""


def server_fault(code: str) -> bool:
    """True when ``code`` (an S3 error code or a bare HTTP status) is the server's own failure."""
    return code in SERVER_FAULTS or (len(code) == 3 and code.startswith("5") and code.isdigit())


MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
TAKEN = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
"""Answers to a conditional create (``If-None-Match: *``) whose key already exists."""
PROBE_NAME = ".imgbot-probe"
"""The health probe's empty object, right under the prefix (no image key looks like it)."""


def build_client(
    settings: Settings,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    endpoint: str | None = None,
) -> S3Client:
    """Build a boto3 S3 client for the upload endpoint, configured for third-party S3."""
    config = Config(
        signature_version="s3v4",
        region_name=settings.region,
        s3={"addressing_style": settings.addressing_style},
        # Since boto3 1.36 a CRC32 trailer is sent by default; COS, OSS and R2 reject it.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=settings.s3_timeout_seconds,
        read_timeout=settings.s3_timeout_seconds,
        # Storage retries are boto3's own (standard mode: jittered backoff, throttling and 5xx);
        # imgbot.net.retry covers the calls imgbot makes itself.
        retries={"mode": "standard", "max_attempts": settings.s3_attempts},
        tcp_keepalive=True,
        max_pool_connections=32,
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or settings.endpoint,
        aws_access_key_id=access_key or settings.s3_access_key.get_secret_value(),
        aws_secret_access_key=secret_key or settings.s3_secret_key.get_secret_value(),
        config=config,
    )
    return client


class S3Storage:
    """The calls the bot makes on its bucket: everything the bot user's policy allows."""

    def __init__(self, client: S3Client, bucket: str, *, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.probe_key = prefix + PROBE_NAME

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Build storage for the configured bucket and prefix."""
        return cls(build_client(settings), settings.s3_bucket, prefix=settings.s3_prefix)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self._client.meta.endpoint_url!r})"

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        content_disposition: str = "inline",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``data`` under ``key`` with the given response headers and user metadata."""
        with translated("upload", key_label(key), hide=key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                ContentDisposition=content_disposition,
                Metadata=metadata or {},
            )

    def get(
        self, key: str, max_bytes: int, *, require_metadata: Mapping[str, str] | None = None
    ) -> bytes:
        """The object's bytes; ``StorageError`` with code ``TooLarge`` beyond ``max_bytes``.

        A missing or expired key is ``StorageError`` with code ``NoSuchKey`` on MinIO; AWS S3
        answers ``AccessDenied`` instead when the caller may not list the bucket (the bot user
        may not), so callers treat both as "gone". With ``require_metadata`` the body is read
        only when the object's user metadata holds each of those pairs exactly (code
        ``MetadataMismatch`` otherwise, decided on the response headers).
        """
        with translated("download", key_label(key), hide=key):
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
            body = answer["Body"]
            try:
                # Header names are case-insensitive; botocore keeps the case the server sent.
                stored = {k.lower(): v for k, v in answer.get("Metadata", {}).items()}
                wanted = require_metadata or {}
                if any(stored.get(k.lower()) != v for k, v in wanted.items()):
                    raise StorageError(
                        f"download {key_label(key)} refused: its metadata differs",
                        code="MetadataMismatch",
                    )
                if answer.get("ContentLength", 0) > max_bytes:
                    raise StorageError(_too_large(key_label(key), max_bytes), code="TooLarge")
                data = body.read(max_bytes + 1)
            finally:
                body.close()
        if len(data) > max_bytes:  # a provider that sent no or a wrong Content-Length
            raise StorageError(_too_large(key_label(key), max_bytes), code="TooLarge")
        return data

    def probe(self) -> None:
        """Prove the keys may write under the prefix of this bucket, or raise ``StorageError``.

        A conditional create (``If-None-Match: *``) of the empty object ``PROBE_NAME`` under the
        prefix: the call the bot most needs (``s3:PutObject`` on the prefix, which the bot user
        has), answered with a body on every S3 server, so wrong keys (``SignatureDoesNotMatch``,
        ``InvalidAccessKeyId``), a missing bucket (``NoSuchBucket``) and a refused write
        (``AccessDenied``) are told apart. It needs no lifecycle API, no listing and no bucket
        permission. The object is written once; later probes are answered "already there"
        (412), which proves the same, until the lifecycle rule expires it and a probe writes it
        again. A server that ignores the condition overwrites the empty object instead.
        """
        try:
            with translated("probe", self.bucket):
                self._client.put_object(
                    Bucket=self.bucket, Key=self.probe_key, Body=b"", IfNoneMatch="*"
                )
        except StorageError as exc:
            if exc.code not in TAKEN:  # already written: reachable and allowed, healthy
                raise


def _too_large(key: str, max_bytes: int) -> str:
    return f"download {key} failed: larger than {max_bytes} bytes"


@contextmanager
def translated(operation: str, subject: str, *, hide: str = "") -> Iterator[None]:
    """Turn botocore's exceptions into StorageError with a message safe to show; ``hide`` (an
    object key, which botocore may quote in a URL) is named by its label."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(
            error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
        message = error.get("Message") or code
        if code in BAD_KEYS:
            message = "the storage refused the key pair; check S3_ACCESS_KEY and S3_SECRET_KEY"
        raise StorageError(f"{operation} {subject} failed: {code}: {message}", code=code) from None
    except BotoCoreError as exc:
        kind = type(exc).__name__
        detail = _safe(exc).replace(hide, key_label(hide)) if hide else _safe(exc)
        raise StorageError(f"{operation} {subject} failed: {kind}: {detail}", code=kind) from None


def _safe(exc: BotoCoreError) -> str:
    """botocore messages name the endpoint URL (fine) but never the query string; cut to be sure."""
    text = str(exc)
    return text.split("?", 1)[0][:200]
