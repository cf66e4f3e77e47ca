"""Doctor's access checks: a signed write and link work; unsigned reads, lists and writes fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check, anonymous_status, http_get
from imgbot.doctor.storage import fix_for
from imgbot.errors import StorageError
from imgbot.objects.keys import new_token
from imgbot.presign import Presigner, bucket_url
from imgbot.storage_s3 import S3Storage

# A 1x1 PNG: what doctor writes, links and reads back.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2213bc60000000049454e44ae426082"
)
# Doctor's objects live here; the bot user may not delete, so the lifecycle rule removes them.
DOCTOR_DIR = "doctor/"
STALE_MARGIN_SECONDS = 60
"""How far past the lifetime doctor signs the link the CDN must refuse (clock differences)."""


def links(storage: S3Storage, settings: Settings, checks: list[Check]) -> None:
    """Write a pixel with the bot's keys, load it through a fresh link, then try as anyone."""
    key = f"{settings.s3_prefix}{DOCTOR_DIR}{new_token()}.png"
    try:
        storage.put(key, PIXEL, content_type="image/png", cache_control="no-store")
    except StorageError as exc:
        fix = fix_for(exc, "the key needs s3:PutObject on S3_PREFIX")
        checks.append(Check("write", False, str(exc), fix))
        return
    checks.append(Check("write", True, f"stored {key}"))
    presigner = Presigner.from_settings(settings)
    link = presigner.link(key, ttl=300)
    host = urlsplit(link.url).netloc
    try:
        status, _, body = http_get(link.url, settings.s3_timeout_seconds)
    except (OSError, ValueError) as exc:
        status, body = 0, str(getattr(exc, "reason", exc)).encode()
    if status == 200 and body == PIXEL:
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
    if settings.cdn_url_auth:
        checks.extend(cdn_auth(presigner, key, settings))
        checks.append(private(f"{presigner.bucket_url}/{key}", settings))
    elif not settings.public_base_url:
        checks.append(private(link.url.split("?", 1)[0], settings))
    checks.append(unlisted(presigner.bucket_url + "/?list-type=2", settings))
    checks.append(unwritable(settings))


def cdn_auth(presigner: Presigner, key: str, settings: Settings) -> list[Check]:
    """The CDN edge refuses an unsigned link and one signed just past the link lifetime.

    The console sets how long a signature is valid; it must match PRESIGN_TTL_SECONDS, or links
    work longer than imgbot says (or stop early, which the fresh-link check would not see).
    """
    ttl = settings.presign_ttl
    age = ttl + STALE_MARGIN_SECONDS
    past = datetime.now(UTC) - timedelta(seconds=age)
    return [
        refused(
            "cdn unsigned",
            presigner.link(key).url.split("?", 1)[0],
            settings,
            refused_as="the CDN refuses an unsigned link",
            served_as="the CDN serves images without a signature",
            fix="turn on URL authentication (type A or D, as CDN_URL_AUTH) in the CDN console",
        ),
        refused(
            "cdn lifetime",
            presigner.with_clock(lambda: past).link(key).url,
            settings,
            refused_as=f"a link signed {age} s ago is refused",
            served_as=f"a link signed {age} s ago still loads: the console's validity is longer "
            f"than the link lifetime ({ttl} s)",
            fix=f"set the URL authentication validity in the CDN console to {ttl} seconds",
        ),
    ]


def private(unsigned_url: str, settings: Settings) -> Check:
    """An unsigned GET of an image must be refused (presigned mode)."""
    return refused(
        "private",
        unsigned_url,
        settings,
        refused_as="an unsigned GET is refused",
        served_as="anyone can read images without a signed link",
        fix="run imgbot setup (removes public-read bucket policies and ACLs)",
    )


def unlisted(listing_url: str, settings: Settings) -> Check:
    """An unsigned listing of the bucket must be refused."""
    return refused(
        "unlisted",
        listing_url,
        settings,
        refused_as="anonymous listing is refused",
        served_as="anyone can list the bucket's keys",
        fix="run imgbot setup (removes anonymous listing grants)",
    )


def refused(
    name: str, url: str, settings: Settings, *, refused_as: str, served_as: str, fix: str
) -> Check:
    """A check that passes when an unauthenticated GET of ``url`` is not answered 200."""
    status = anonymous_status(url, settings.s3_timeout_seconds)
    if status == 200:
        return Check(name, False, served_as, fix)
    return Check(name, True, f"{refused_as} (HTTP {status or 'no answer'})")


def unwritable(settings: Settings) -> Check:
    """An unsigned PUT under the prefix must be refused, at the storage itself (not a proxy).

    The key is a fresh one under doctor's folder, so a PUT that gets through costs one tiny
    object the lifecycle rule removes; refused means nothing was written.
    """
    # The upload endpoint: the storage's own answer, not a proxy's.
    bucket = bucket_url(settings.endpoint, settings.s3_bucket, settings.addressing_style)
    key = f"{settings.s3_prefix}{DOCTOR_DIR}{new_token()}.anonymous-write-check"
    status = anonymous_status(
        f"{bucket}/{key}",
        settings.s3_timeout_seconds,
        method="PUT",
        body=b"anonymous write check by imgbot doctor\n",
    )
    if 200 <= status < 300:
        return Check(
            "unwritable",
            False,
            f"anyone can write under {settings.s3_prefix} without a key (wrote {key})",
            "run imgbot setup (removes anonymous write grants)",
        )
    return Check("unwritable", True, f"an unsigned PUT is refused (HTTP {status or 'no answer'})")
