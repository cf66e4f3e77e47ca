"""Doctor's storage checks: endpoint, clock, keys and bucket, least privilege, lifecycle rule."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from imgbot.bucket.admin import BucketAdmin, LifecycleUnsupported
from imgbot.bucket.rules import our_rule, rule_prefix
from imgbot.config.settings import Settings
from imgbot.doctor.check import Check, http_get
from imgbot.errors import StorageError
from imgbot.storage_s3 import BAD_KEYS, S3Storage, server_fault

MAX_SKEW_SECONDS = 900  # SigV4 requests and links fail beyond 15 minutes of clock difference


def endpoint(settings: Settings, checks: list[Check]) -> bool:
    """Is the upload endpoint answering? Also measures the clock skew from its Date header."""
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
    checks.append(clock(headers.get("Date")))
    return True


def clock(date_header: str | None) -> Check:
    """Compare the local clock with the server's Date header."""
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


def credentials_and_bucket(storage: S3Storage, settings: Settings, checks: list[Check]) -> bool:
    """Do the keys work on the bucket? The bot's own health probe answers."""
    try:
        storage.probe()
    except StorageError as exc:
        if exc.code in BAD_KEYS:
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
                    fix_for(
                        exc,
                        f"the keys must be allowed to write under {settings.s3_prefix} "
                        "(the policy in infra/minio/imgbot-bot-policy.json)",
                    ),
                )
            )
        return False
    checks.append(Check("credentials", True, "accepted"))
    checks.append(Check("bucket", True, f"{settings.s3_bucket} exists"))
    return True


SERVER_FAULT_FIX = (
    "the storage server failed, not the keys: check its free space, health and log "
    "(SeaweedFS: raise -volume.max, each bucket takes seven volumes; MinIO: mc admin info)"
)


def fix_for(exc: StorageError, rights: str) -> str:
    """What to do about a failed storage call: ``rights`` (what the key must be allowed) only
    when the server refused the key; never when the server itself failed."""
    if server_fault(exc.code):
        return SERVER_FAULT_FIX
    if exc.code in BAD_KEYS:
        return "check S3_ACCESS_KEY and S3_SECRET_KEY"
    return rights


def least_privilege(admin: BucketAdmin, settings: Settings, *, minio: bool) -> Check:
    """Does the bot hold more than it needs? Keys that may list every bucket are admin keys.
    ``minio``: the server answered as MinIO, so `setup --bot-user` can make the bot's user."""
    try:
        broad = admin.can_list_buckets()
    except StorageError as exc:
        return Check("least privilege", True, f"not measured (listing buckets: {exc.code})")
    if not broad:
        return Check("least privilege", True, "the keys may not list buckets (not admin keys)")
    fix = (
        "give the bot its own user: imgbot setup --bot-user imgbot with the admin keys, "
        "then put the printed S3_ACCESS_KEY/S3_SECRET_KEY in .env"
        if minio
        else "use a sub-user limited to the prefix (policy in infra/README.md), not account keys"
    )
    if settings.s3_provider == "minio" and not minio:
        fix = f"the server is not MinIO (set S3_PROVIDER=s3), so setup cannot make its user: {fix}"
    return Check(
        "least privilege",
        False,
        "the keys can list every bucket: admin keys or broader than the bot needs, "
        "and every link carries them",
        fix,
    )


def lifecycle(admin: BucketAdmin, settings: Settings) -> Check:
    """Is our lifecycle rule there, enabled, on the prefix, with the configured days?"""
    days, prefix = settings.image_retention_days, settings.s3_prefix
    try:
        rules = admin.lifecycle_rules()
    except LifecycleUnsupported:
        elsewhere = settings.retention_managed_elsewhere
        if elsewhere:
            return Check(
                "lifecycle",
                True,
                f"not supported by this server; old images are deleted by: {elsewhere}",
            )
        return Check(
            "lifecycle",
            False,
            "not supported by this server; images would be kept for ever",
            "have something else delete old images and name it in RETENTION_MANAGED_ELSEWHERE",
        )
    except StorageError as exc:
        if exc.code not in ("AccessDenied", "403"):
            raise
        # Reading the rule is the one thing doctor asks beyond the bot's minimum policy.
        return Check(
            "lifecycle",
            True,
            "not measured (these keys may not read the lifecycle rule; the admin keys may)",
        )
    rule = our_rule(rules)
    if rule is None or rule_prefix(rule) != prefix or rule.get("Status") != "Enabled":
        return Check(
            "lifecycle",
            False,
            f"no rule expires {prefix}; images would pile up",
            "run imgbot setup",
        )
    found = rule.get("Expiration", {}).get("Days")
    if found != days:
        return Check(
            "lifecycle",
            False,
            f"rule expires after {found} days, IMAGE_RETENTION_DAYS is {days}",
            "run imgbot setup",
        )
    return Check("lifecycle", True, f"{prefix} expires after {days} days")
