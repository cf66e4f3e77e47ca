"""S3-compatible object storage through boto3: objects, bucket, lifecycle and policy calls.

One client is built per process (about 0.1 s each) with the provider quirks spelled out in its
botocore ``Config``. Every botocore error is translated into ``StorageError`` in one place, with a
message that names the operation and the S3 error code but never credentials or signed URLs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imgbot.config import Settings
from imgbot.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_NO_LIFECYCLE = {"NoSuchLifecycleConfiguration"}
_NO_POLICY = {"NoSuchBucketPolicy"}
_NO_ACL = {"NotImplemented", "NotSupported", "501"}
_PUBLIC_GROUPS = ("/global/AllUsers", "/global/AuthenticatedUsers")


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
        retries={"mode": "standard", "max_attempts": 3},
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
    """The calls imgbot makes on one bucket."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Build storage for the configured bucket."""
        return cls(build_client(settings), settings.s3_bucket)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self._client.meta.endpoint_url!r})"

    # Objects -----------------------------------------------------------------------------------

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
        with _translated("upload", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                ContentDisposition=content_disposition,
                Metadata=metadata or {},
            )

    def probe(self) -> None:
        """Raise StorageError unless storage answers with these credentials (reads lifecycle)."""
        self.lifecycle_rules()

    # Bucket ------------------------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        """True if the bucket exists and these credentials may use it."""
        try:
            with _translated("check bucket", self.bucket):
                self._client.head_bucket(Bucket=self.bucket)
        except StorageError as exc:
            if exc.code in _MISSING:
                return False
            raise
        return True

    def create_bucket(self, region: str) -> None:
        """Create the bucket (private, the S3 default)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with _translated("create bucket", self.bucket):
            self._client.create_bucket(**kwargs)

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """The bucket's lifecycle rules; empty when it has none."""
        rules: list[dict[str, Any]] = self._optional(
            "read lifecycle",
            _NO_LIFECYCLE,
            [],
            lambda: list(
                self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
            ),
        )
        return rules

    def put_lifecycle_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the whole lifecycle configuration with ``rules``."""
        with _translated("write lifecycle", self.bucket):
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
            )

    def policy(self) -> dict[str, Any] | None:
        """The bucket policy document, or None."""
        text = self._optional(
            "read bucket policy",
            _NO_POLICY,
            None,
            lambda: self._client.get_bucket_policy(Bucket=self.bucket)["Policy"],
        )
        return json.loads(text) if text else None

    def put_policy(self, document: dict[str, Any] | None) -> None:
        """Write the bucket policy, or delete it when ``document`` is None or has no statements."""
        with _translated("write bucket policy", self.bucket):
            if document and document.get("Statement"):
                self._client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(document))
            else:
                self._client.delete_bucket_policy(Bucket=self.bucket)

    def make_acl_private(self) -> bool:
        """Set the bucket ACL to private if it grants anything to all users; True if changed.

        COS "public read" and S3 public-read buckets are opened by ACL, not by policy.
        """
        acl = self._optional(
            "read bucket ACL",
            _NO_ACL,
            None,
            lambda: self._client.get_bucket_acl(Bucket=self.bucket),
        )
        grants = (acl or {}).get("Grants", [])
        if not any(g.get("Grantee", {}).get("URI", "").endswith(_PUBLIC_GROUPS) for g in grants):
            return False
        with _translated("write bucket ACL", self.bucket):
            self._client.put_bucket_acl(Bucket=self.bucket, ACL="private")
        return True

    def _optional(
        self, operation: str, absent: set[str], default: Any, call: Callable[[], Any]
    ) -> Any:
        try:
            with _translated(operation, self.bucket):
                return call()
        except StorageError as exc:
            if exc.code in absent:
                return default
            raise


@contextmanager
def _translated(operation: str, subject: str) -> Iterator[None]:
    """Turn botocore's exceptions into StorageError with a message safe to show."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(
            error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
        message = error.get("Message") or code
        raise StorageError(f"{operation} {subject} failed: {code}: {message}", code=code) from None
    except BotoCoreError as exc:
        kind = type(exc).__name__
        raise StorageError(
            f"{operation} {subject} failed: {kind}: {_safe(exc)}", code=kind
        ) from None


def _safe(exc: BotoCoreError) -> str:
    """botocore messages name the endpoint URL (fine) but never the query string; cut to be sure."""
    text = str(exc)
    return text.split("?", 1)[0][:200]
