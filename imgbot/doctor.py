"""``imgbot doctor``: the old manual's troubleshooting section, run as checks.

Each check gives one line: ok or PROBLEM, what was found, and what to do. Checks that depend on an
earlier one (the bucket needs working credentials, links need a bucket) are skipped when it fails.
It needs only the bot user's rights: object read/write under the prefix and lifecycle read.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from imgbot.config import Settings
from imgbot.errors import StorageError
from imgbot.keys import new_token
from imgbot.presign import Presigner
from imgbot.setup import RULE_ID
from imgbot.storage_s3 import S3Storage

MAX_SKEW_SECONDS = 900  # SigV4 requests and links fail beyond 15 minutes of clock difference
_BAD_KEYS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
}
# A 1x1 PNG: what doctor writes, links and reads back.
_PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2213bc60000000049454e44ae426082"
)


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """One printable line."""
        status = "ok     " if self.ok else "PROBLEM"
        text = f"{status} {self.name:<18} {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text


def http_get(url: str, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without credentials; HTTP errors are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (http/https only)
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def doctor(settings: Settings) -> list[Check]:
    """Run every check and return the results in order."""
    checks = [Check("configuration", True, "settings are valid")]
    storage = S3Storage.from_settings(settings)
    reachable = _endpoint(settings, checks)
    if reachable and _credentials_and_bucket(storage, settings, checks):
        _lifecycle(storage, settings, checks)
        _links(storage, settings, checks)
    checks.append(_public_address(settings))
    if settings.has_dingtalk_credentials:
        checks.append(_dingtalk(settings))
    return checks


def _endpoint(settings: Settings, checks: list[Check]) -> bool:
    url = settings.endpoint
    try:
        status, headers, _ = http_get(url + "/", settings.s3_timeout_seconds)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        checks.append(
            Check(
                "storage endpoint",
                False,
                f"{url} unreachable ({reason})",
                "start the storage service (make run / systemctl start minio), "
                "check S3_ENDPOINT, firewall and security group",
            )
        )
        return False
    checks.append(Check("storage endpoint", True, f"{url} answers (HTTP {status})"))
    checks.append(_clock(headers.get("Date")))
    return True


def _clock(date_header: str | None) -> Check:
    if not date_header:
        return Check("clock", True, "server sent no Date header; skew not measured")
    skew = abs((datetime.now(UTC) - parsedate_to_datetime(date_header)).total_seconds())
    if skew > MAX_SKEW_SECONDS:
        return Check(
            "clock",
            False,
            f"local clock differs from the server's by {skew:.0f} s",
            "links fail beyond 15 minutes: enable NTP (timedatectl set-ntp true)",
        )
    return Check("clock", True, f"skew {skew:.0f} s")


def _credentials_and_bucket(storage: S3Storage, settings: Settings, checks: list[Check]) -> bool:
    try:
        storage.lifecycle_rules()
    except StorageError as exc:
        if exc.code in _BAD_KEYS:
            checks.append(
                Check(
                    "credentials",
                    False,
                    f"refused ({exc.code})",
                    "check S3_ACCESS_KEY and S3_SECRET_KEY",
                )
            )
        elif exc.code in ("NoSuchBucket", "404"):
            checks.append(Check("credentials", True, "accepted"))
            checks.append(
                Check("bucket", False, f"{settings.s3_bucket} does not exist", "run imgbot setup")
            )
        else:
            checks.append(
                Check(
                    "credentials",
                    False,
                    str(exc),
                    "the key needs the policy in infra/minio/imgbot-bot-policy.json",
                )
            )
        return False
    checks.append(Check("credentials", True, "accepted"))
    checks.append(Check("bucket", True, f"{settings.s3_bucket} exists"))
    return True


def _lifecycle(storage: S3Storage, settings: Settings, checks: list[Check]) -> None:
    days, prefix = settings.image_retention_days, settings.s3_prefix
    for rule in storage.lifecycle_rules():
        rule_prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix"))
        if rule.get("ID") == RULE_ID and rule_prefix == prefix and rule.get("Status") == "Enabled":
            found = rule.get("Expiration", {}).get("Days")
            if found == days:
                checks.append(Check("lifecycle", True, f"{prefix} expires after {days} days"))
            else:
                checks.append(
                    Check(
                        "lifecycle",
                        False,
                        f"rule expires after {found} days, IMAGE_RETENTION_DAYS is {days}",
                        "run imgbot setup",
                    )
                )
            return
    checks.append(
        Check(
            "lifecycle",
            False,
            f"no rule expires {prefix}; images would pile up",
            "run imgbot setup",
        )
    )


def _links(storage: S3Storage, settings: Settings, checks: list[Check]) -> None:
    key = f"{settings.s3_prefix}doctor/{new_token()}.png"
    try:
        storage.put(key, _PIXEL, content_type="image/png", cache_control="no-store")
    except StorageError as exc:
        checks.append(Check("write", False, str(exc), "the key needs s3:PutObject on S3_PREFIX"))
        return
    # The bot user may not delete; the lifecycle rule removes this tiny object like any image.
    checks.append(Check("write", True, f"stored {key}"))
    presigner = Presigner.from_settings(settings)
    link = presigner.link(key, ttl=300)
    host = urlsplit(link.url).netloc
    try:
        status, _, body = http_get(link.url, settings.s3_timeout_seconds)
    except (OSError, ValueError) as exc:
        status, body = 0, str(getattr(exc, "reason", exc)).encode()
    if status == 200 and body == _PIXEL:
        checks.append(Check("link", True, f"a fresh link loads through {host}"))
    else:
        detail = f"HTTP {status}" if status else body.decode(errors="replace")[:120]
        checks.append(
            Check(
                "link",
                False,
                f"a fresh link does not load through {host} ({detail})",
                "check S3_PUBLIC_ENDPOINT, firewall/security group, and that a "
                "proxy passes Host unchanged and keeps the path",
            )
        )
    if not settings.public_base_url:
        checks.append(_private(link.url.split("?", 1)[0], settings))
    checks.append(_unlisted(presigner.bucket_url + "/?list-type=2", settings))


def _anonymous_status(url: str, settings: Settings) -> int:
    try:
        return http_get(url, settings.s3_timeout_seconds)[0]
    except (OSError, ValueError):
        return 0


def _private(unsigned_url: str, settings: Settings) -> Check:
    status = _anonymous_status(unsigned_url, settings)
    if status == 200:
        return Check(
            "private",
            False,
            "anyone can read images without a signed link",
            "run imgbot setup (removes public-read bucket policies and ACLs)",
        )
    return Check("private", True, f"an unsigned GET is refused (HTTP {status or 'no answer'})")


def _unlisted(listing_url: str, settings: Settings) -> Check:
    status = _anonymous_status(listing_url, settings)
    if status == 200:
        return Check(
            "unlisted",
            False,
            "anyone can list the bucket's keys",
            "run imgbot setup (removes anonymous listing grants)",
        )
    return Check("unlisted", True, f"anonymous listing is refused (HTTP {status or 'no answer'})")


def _public_address(settings: Settings) -> Check:
    origin = settings.public_base_url or settings.public_endpoint
    host = urlsplit(origin).hostname or ""
    if not settings.has_dingtalk_credentials:
        return Check("public address", True, f"{host} (not checked: no DingTalk credentials)")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return Check(
            "public address",
            False,
            f"{host} does not resolve",
            "set S3_PUBLIC_ENDPOINT to a name phones can resolve",
        )
    private = sorted(a for a in addresses if not ipaddress.ip_address(a).is_global)
    if private:
        return Check(
            "public address",
            False,
            f"{host} is a private or loopback address "
            f"({', '.join(private)}); phones cannot load images from it",
            "set S3_PUBLIC_ENDPOINT (or PUBLIC_BASE_URL) to a public https origin",
        )
    if urlsplit(origin).scheme != "https":
        return Check(
            "public address",
            False,
            f"{origin} is public but plain http; DingTalk shows Markdown images from https links",
            "put TLS in front (infra/nginx/imgbot-minio.conf) and use an https:// origin",
        )
    return Check("public address", True, f"{host} is public and https")


def _dingtalk(settings: Settings) -> Check:
    base = settings.dingtalk_openapi_endpoint.rstrip("/")
    secret = settings.dingtalk_client_secret
    body = json.dumps(
        {
            "appKey": settings.dingtalk_client_id,
            "appSecret": secret.get_secret_value() if secret else "",
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (an http(s) origin, validated in config)
        base + "/v1.0/oauth2/accessToken", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (https origin)
            token = json.loads(answer.read()).get("accessToken")
    except urllib.error.HTTPError as exc:
        return Check(
            "dingtalk",
            False,
            f"credentials refused (HTTP {exc.code})",
            "check DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET",
        )
    except (OSError, ValueError) as exc:
        return Check(
            "dingtalk",
            False,
            f"{base} unreachable ({type(exc).__name__})",
            "check the network to DingTalk",
        )
    if not token:
        return Check(
            "dingtalk",
            False,
            "no access token returned",
            "check DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET",
        )
    return Check("dingtalk", True, "credentials accepted (access token issued)")
