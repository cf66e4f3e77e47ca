"""Links to stored objects: SigV4 query signatures for the public endpoint, made locally.

SigV4 signs the ``Host`` header, so links are signed for ``S3_PUBLIC_ENDPOINT`` (the origin chat
clients reach), never for the upload endpoint. Signing needs no network call: the region is fixed
by configuration. botocore's query signer is used directly because it is about three times faster
than ``generate_presigned_url`` on a full client, which runs the event machinery for every link.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from imgbot.config import MAX_SIGV4_TTL, Settings
from imgbot.models import Link


class Presigner:
    """Makes GET links for keys of one bucket."""

    def __init__(
        self,
        *,
        public_endpoint: str,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        addressing_style: str,
        ttl: int,
        max_ttl: int = MAX_SIGV4_TTL,
        public_base_url: str | None = None,
    ) -> None:
        self._credentials = Credentials(access_key, secret_key)
        self._region = region
        self._max_ttl = min(max_ttl, MAX_SIGV4_TTL)
        self._ttl = min(ttl, self._max_ttl)
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._base = _bucket_base(public_endpoint, bucket, addressing_style)

    @classmethod
    def from_settings(cls, settings: Settings) -> Presigner:
        """Build a presigner from settings."""
        return cls(
            public_endpoint=settings.public_endpoint,
            bucket=settings.s3_bucket,
            region=settings.region,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            addressing_style=settings.addressing_style,
            ttl=settings.presign_ttl,
            max_ttl=settings.presign_ttl_cap,
            public_base_url=settings.public_base_url,
        )

    @property
    def ttl(self) -> int:
        """Default link lifetime in seconds."""
        return self._ttl

    @property
    def bucket_url(self) -> str:
        """The bucket's URL on the public endpoint, unsigned."""
        return self._base

    @property
    def is_public(self) -> bool:
        """True when links are plain PUBLIC_BASE_URL links rather than signed ones."""
        return self._public_base_url is not None

    def link(self, key: str, ttl: int | None = None) -> Link:
        """Return a link to ``key``; signed links live ``ttl`` seconds, clamped to the retention
        (links never outlive objects) and to SigV4's 604800 s."""
        path = quote(key, safe="/~")
        if self._public_base_url is not None:
            return Link(f"{self._public_base_url}/{path}", None)
        seconds = max(1, min(ttl if ttl is not None else self._ttl, self._max_ttl))
        # X-Amz-Date is this second or later, so the link lives at least until expires_at.
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
        request = AWSRequest(method="GET", url=f"{self._base}/{path}")
        S3SigV4QueryAuth(self._credentials, "s3", self._region, expires=seconds).add_auth(request)
        return Link(str(request.url), expires_at)

    def __repr__(self) -> str:
        return f"Presigner(base={self._base!r}, region={self._region!r}, ttl={self._ttl})"


def _bucket_base(endpoint: str, bucket: str, addressing_style: str) -> str:
    parts = urlsplit(endpoint)
    if addressing_style == "virtual":
        return f"{parts.scheme}://{bucket}.{parts.netloc}"
    return f"{parts.scheme}://{parts.netloc}/{bucket}"
