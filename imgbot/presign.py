"""Links to stored objects, made locally: SigV4, CDN URL authentication, or plain public links.

SigV4 signs the ``Host`` header, so links are signed for ``S3_PUBLIC_ENDPOINT`` (the origin chat
clients reach), never for the upload endpoint. Signing needs no network call: the region is fixed
by configuration. botocore's query signer is driven directly so that a link is signed at the time
the presigner's clock gives (a test signs one in the past to see storage refuse it as expired);
botocore's public ``generate_presigned_url`` always reads the system clock. That it is also about
three times faster does not matter to a reply (half a millisecond of a 96 ms reply,
``bench/presign.py``).
``tests/test_presign_pin.py`` checks its links equal ``generate_presigned_url``'s for the same
instant, so a botocore release that changes the internals used here fails there.

With ``PUBLIC_BASE_URL`` links point at a CDN: signed by the CDN's URL authentication
(``CDN_URL_AUTH``, the bucket stays private) or, without it, plain (a public-read prefix).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydantic import SecretStr

from imgbot.config.settings import MAX_SIGV4_TTL, Settings, clamp_ttl
from imgbot.models import Link
from imgbot.objects.cdn_auth import CdnAuthType, sign_query

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class _QueryAuthAt(S3SigV4QueryAuth):
    """botocore's query signer, signing at a given time instead of reading the clock itself.

    ``add_auth`` is botocore's own with the timestamp given; it calls two of botocore's private
    steps, pinned by ``tests/test_presign_pin.py``.
    """

    def __init__(self, *args: Any, signed_at: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signed_at = signed_at

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._signed_at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]


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
        cdn_auth: CdnAuthType | None = None,
        cdn_key: SecretStr | None = None,
        clock: Clock = _now,
    ) -> None:
        if cdn_auth is not None and (public_base_url is None or cdn_key is None):
            raise ValueError("CDN URL authentication needs PUBLIC_BASE_URL and CDN_AUTH_KEY")
        self._credentials = Credentials(access_key, secret_key)
        self._region = region
        self._max_ttl = max_ttl
        self._ttl = clamp_ttl(ttl, max_ttl)
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._cdn_auth = cdn_auth
        self._cdn_key = cdn_key
        self._clock = clock
        self._base = bucket_url(public_endpoint, bucket, addressing_style)

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
            cdn_auth=settings.cdn_url_auth,
            cdn_key=settings.cdn_auth_key,
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
        """True when links go to PUBLIC_BASE_URL (a CDN, cached publicly) rather than storage."""
        return self._public_base_url is not None

    def with_clock(self, clock: Clock) -> Presigner:
        """The same presigner, signing at the times ``clock`` gives (doctor, tests)."""
        twin = copy.copy(self)
        twin._clock = clock
        return twin

    def link(self, key: str, ttl: int | None = None) -> Link:
        """Return a link to ``key``; signed links live ``ttl`` seconds (default the configured
        lifetime), never longer than the retention (links never outlive objects) or 604800 s."""
        path = quote(key, safe="/~")
        seconds = self._ttl if ttl is None else clamp_ttl(ttl, self._max_ttl)
        signed_at = self._clock().astimezone(UTC).replace(microsecond=0)
        expires_at = signed_at + timedelta(seconds=seconds)
        if self._public_base_url is not None:
            url = f"{self._public_base_url}/{path}"
            if self._cdn_auth is None or self._cdn_key is None:
                return Link(url, None)
            # The console's validity (the configured lifetime) runs from the signed timestamp, so a
            # shorter link is signed as if made earlier; links never last longer than configured.
            seconds = min(seconds, self._ttl)
            stamp = int(signed_at.timestamp()) + seconds - self._ttl
            query = sign_query(
                self._cdn_auth, self._cdn_key.get_secret_value(), urlsplit(url).path, stamp
            )
            return Link(f"{url}?{query}", signed_at + timedelta(seconds=seconds))
        request = AWSRequest(method="GET", url=f"{self._base}/{path}")
        auth = _QueryAuthAt(
            self._credentials, "s3", self._region, expires=seconds, signed_at=signed_at
        )
        auth.add_auth(request)
        return Link(str(request.url), expires_at)

    def __repr__(self) -> str:
        return f"Presigner(base={self._base!r}, region={self._region!r}, ttl={self._ttl})"


def bucket_url(endpoint: str, bucket: str, addressing_style: str) -> str:
    """The unsigned URL of ``bucket`` at ``endpoint`` (an origin): ``scheme://bucket.host`` for
    virtual addressing, ``scheme://host/bucket`` for path addressing."""
    parts = urlsplit(endpoint)
    if addressing_style == "virtual":
        return f"{parts.scheme}://{bucket}.{parts.netloc}"
    return f"{parts.scheme}://{parts.netloc}/{bucket}"
