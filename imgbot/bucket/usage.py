"""How much the bucket holds, from the storage server's own usage figures (for the metrics).

Nothing here lists objects: the bot user may not list, and counting a large bucket key by key
would cost more than the figure is worth. Each server offers its own figures, so ``USAGE_SOURCES``
maps S3_PROVIDER to the function that reads them; a provider without an entry has no figures
imgbot reads, and ``read_usage`` says so with ``UsageUnavailable``.

MinIO: its admin API's account info (``/minio/admin/v3/accountinfo?prefix-usage=true``, through
minio-py) gives, for each bucket the keys may list, locate or write at its root, the bucket's
bytes and objects and the bytes under each top-level prefix, as its data scanner last counted
them (minutes old; zero until its first scan, about a minute after start). No admin permission is
needed, but the least-privilege bot user (writes only under the prefix) is shown no bucket at
all, so with those keys the figures are unavailable: S3_USAGE_ACCESS_KEY/S3_USAGE_SECRET_KEY name
keys that are shown it (``s3:GetBucketLocation`` on the bucket is enough). Object counts exist
per bucket only, and bytes per top-level prefix only: for a nested S3_PREFIX (``a/b/``) the
prefix's bytes are unavailable too.

A Prometheus metrics page (S3_USAGE_METRICS_URL), whatever S3_PROVIDER says, is read instead:
SeaweedFS (which runs as ``S3_PROVIDER=s3``) exports ``SeaweedFS_s3_bucket_object_count{bucket}``
and ``SeaweedFS_s3_bucket_size_bytes{bucket}`` there, refreshed about once a minute; the count
was measured exact, the size lags behind new objects. Whole-bucket figures only: SeaweedFS counts
nothing per prefix. No server imgbot reads counts the objects under S3_PREFIX, so that figure is
unavailable everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from imgbot.config.settings import Settings
from imgbot.errors import StorageError


@dataclass(frozen=True, slots=True)
class Usage:
    """What the server says the bucket holds; None where it does not say."""

    bucket: str
    prefix: str
    prefix_bytes: int | None
    bucket_bytes: int | None
    bucket_objects: int | None


class UsageUnavailable(StorageError):
    """The server offers no usage figures these keys may read; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"storage usage unavailable: {reason}", code="UsageUnavailable")


def minio_usage(settings: Settings) -> Usage:
    """The bucket's usage from MinIO's account info for the configured keys."""
    import urllib3
    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider
    from minio.error import MinioAdminException

    endpoint = urlsplit(settings.endpoint)
    admin = MinioAdmin(
        endpoint=str(endpoint.netloc),
        secure=endpoint.scheme == "https",
        region=settings.region,
        credentials=StaticProvider(*usage_keys(settings)),
        # A bounded wait and no retries: the next refresh is the retry.
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(
                connect=settings.s3_timeout_seconds, read=settings.s3_timeout_seconds
            ),
            retries=False,
        ),
    )
    try:
        info = json.loads(admin.account_info(prefix_usage=True))
    except MinioAdminException as exc:
        status = str(exc).split("Status: ", 1)[-1].split(",", 1)[0]
        raise UsageUnavailable(f"MinIO's account info refused (HTTP {status})") from None
    except (OSError, urllib3.exceptions.HTTPError, ValueError) as exc:
        raise UsageUnavailable(f"MinIO's account info failed: {type(exc).__name__}") from None
    return usage_from_account_info(info, settings.s3_bucket, settings.s3_prefix)


def usage_keys(settings: Settings) -> tuple[str, str]:
    """S3_USAGE_ACCESS_KEY/S3_USAGE_SECRET_KEY when set, else the bot's own keys."""
    if settings.s3_usage_access_key and settings.s3_usage_secret_key:
        return settings.s3_usage_access_key, settings.s3_usage_secret_key.get_secret_value()
    return settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value()


def usage_from_account_info(info: dict[str, Any], bucket: str, prefix: str) -> Usage:
    """Pick ``bucket`` and ``prefix`` out of MinIO's account info document."""
    buckets = info.get("Buckets") or []
    entry = next(
        (b for b in buckets if isinstance(b, dict) and b.get("name") == bucket),
        None,
    )
    if entry is None:
        raise UsageUnavailable(
            f"MinIO shows these keys no usage of bucket {bucket} (it shows buckets the keys may "
            "list, locate or write at the root; the least-privilege bot user may do none: set "
            "S3_USAGE_ACCESS_KEY/S3_USAGE_SECRET_KEY to a user allowed s3:GetBucketLocation)"
        )
    size, objects = _count(entry.get("size")), _count(entry.get("objects"))
    top, _, rest = prefix.partition("/")
    by_prefix = entry.get("prefixUsage") or {}
    if not prefix:
        prefix_bytes = size
    elif rest or not isinstance(by_prefix, dict):  # MinIO counts top-level prefixes only
        prefix_bytes = None
    else:
        prefix_bytes = _count(by_prefix.get(top, 0))
    return Usage(bucket, prefix, prefix_bytes, size, objects)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


METRIC_OBJECTS = "SeaweedFS_s3_bucket_object_count"
METRIC_BYTES = "SeaweedFS_s3_bucket_size_bytes"
"""The gauges, labelled ``bucket``, a metrics page is read for."""


def metrics_usage(settings: Settings) -> Usage:
    """The bucket's figures from the Prometheus metrics page at S3_USAGE_METRICS_URL."""
    import urllib.error
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    url = settings.s3_usage_metrics_url
    if url is None:
        raise UsageUnavailable("S3_USAGE_METRICS_URL is not set")
    try:
        # An http(s) URL validated at start (config.url_rules).
        with urllib.request.urlopen(url, timeout=settings.s3_timeout_seconds) as answer:  # noqa: S310
            text = answer.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        raise UsageUnavailable(f"the metrics page answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise UsageUnavailable(f"the metrics page failed: {type(exc).__name__}") from None
    found: dict[str, int | None] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                wanted = sample.name in (METRIC_OBJECTS, METRIC_BYTES)
                if wanted and sample.labels.get("bucket") == settings.s3_bucket:
                    value = sample.value
                    found[sample.name] = _count(int(value)) if math.isfinite(value) else None
    except ValueError as exc:
        raise UsageUnavailable(f"the metrics page is not Prometheus text: {exc}") from None
    if not found:
        raise UsageUnavailable(
            f"the metrics page has no {METRIC_OBJECTS} for bucket {settings.s3_bucket} (yet: "
            "SeaweedFS publishes bucket figures about a minute after the first object)"
        )
    size = found.get(METRIC_BYTES)
    prefix = settings.s3_prefix
    return Usage(
        settings.s3_bucket, prefix, None if prefix else size, size, found.get(METRIC_OBJECTS)
    )


USAGE_SOURCES: dict[str, Callable[[Settings], Usage]] = {"minio": minio_usage}
"""S3_PROVIDER -> the function reading that server's usage figures; another server's reader is
one more entry returning ``Usage``. S3_USAGE_METRICS_URL, when set, goes before them all
(``metrics_usage``)."""


def read_usage(settings: Settings) -> Usage:
    """The configured bucket's usage, or ``UsageUnavailable`` saying why not."""
    if settings.s3_usage_metrics_url is not None:
        return metrics_usage(settings)
    source = USAGE_SOURCES.get(settings.s3_provider)
    if source is None:
        raise UsageUnavailable(
            f"S3_PROVIDER={settings.s3_provider} offers no usage figures imgbot reads "
            "(SeaweedFS: set S3_USAGE_METRICS_URL to its metrics page)"
        )
    return source(settings)
