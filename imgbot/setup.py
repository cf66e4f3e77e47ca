"""``imgbot setup``: make the bucket ready, idempotently, without disturbing others' settings.

Creates the bucket if missing, merges our lifecycle rule into the existing rules (S3 replaces the
whole configuration on write, so we read, merge by rule ID, and write back), and keeps our prefix
private: every anonymous grant (read, write, list, wildcards) that reaches it is removed, grants
on other prefixes are left to their owners, and with ``PUBLIC_BASE_URL`` exactly one anonymous
read statement for our prefix is kept. ``--bot-user`` also creates the bot's MinIO user.
What the bucket should look like is decided in ``bucket_rules``; this module does the I/O.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from imgbot.bucket.admin import BucketAdmin, LeaseHeld
from imgbot.bucket.rules import (
    RULE_ID,
    bot_user_policy,
    describe,
    lifecycle_rule,
    merge_rule,
    our_rule,
    plan_policy,
    same_rule,
)
from imgbot.config.settings import Settings
from imgbot.errors import StorageError, UsageError
from imgbot.storage_s3 import S3Storage, build_client

log = logging.getLogger(__name__)
# Creating the bot user takes well under a second; a lease this old belongs to a run that died.
BOT_USER_LEASE_SECONDS = 120
# SeaweedFS stores lifecycle rules; only its lifecycle worker (run by its admin server) deletes.
_SEAWEEDFS_EXPIRY = (
    "SeaweedFS deletes expired images only while its lifecycle worker runs "
    "(weed mini, or weed admin with weed worker; infra/README.md, section 11)"
)
_NEEDS_ADMIN = (
    "imgbot setup needs admin keys in S3_ACCESS_KEY / S3_SECRET_KEY "
    "(the bot user may not change the bucket)"
)


@dataclass
class SetupReport:
    """What setup did, line by line, for the CLI to print."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record one thing done."""
        log.info("%s", line)
        self.lines.append(line)


def setup(admin: BucketAdmin, settings: Settings) -> SetupReport:
    """Create the bucket if needed, merge our lifecycle rule, keep the bucket's access right."""
    report = SetupReport()
    try:
        if admin.exists():
            report.add(f"bucket {admin.bucket} exists")
        else:
            admin.create(settings.region)
            report.add(f"bucket {admin.bucket} created")
        _ensure_lifecycle(admin, settings, report)
        if admin.server_software().startswith("SeaweedFS"):
            report.add(_SEAWEEDFS_EXPIRY)
        _ensure_access(admin, settings, report)
    except StorageError as exc:
        if exc.code == "AccessDenied":
            raise StorageError(f"{exc}; {_NEEDS_ADMIN}", code=exc.code) from None
        raise
    return report


def _ensure_lifecycle(admin: BucketAdmin, settings: Settings, report: SetupReport) -> None:
    ours = lifecycle_rule(settings.s3_prefix, settings.image_retention_days, settings.s3_provider)
    rules = admin.lifecycle_rules()
    current = our_rule(rules)
    if current is not None and same_rule(current, ours):
        report.add(
            f"lifecycle rule {RULE_ID} already expires {settings.s3_prefix} after "
            f"{settings.image_retention_days} days"
        )
        return
    admin.put_lifecycle_rules(merge_rule(rules, ours))
    kept = len(rules) - (current is not None)
    report.add(
        f"lifecycle rule {RULE_ID} set: expire {settings.s3_prefix} after "
        f"{settings.image_retention_days} days ({kept} other rule(s) kept)"
    )


def _ensure_access(admin: BucketAdmin, settings: Settings, report: SetupReport) -> None:
    bucket, prefix = admin.bucket, settings.s3_prefix
    if admin.make_acl_private():
        report.add(f"bucket {bucket}: public ACL grants removed (ACL set to private)")
    policy = admin.policy() or {}
    plan = plan_policy(
        policy.get("Statement", []), bucket, prefix, public_read=settings.public_read_prefix
    )
    if plan.changed:
        statements = list(plan.statements)
        admin.put_policy(
            {"Version": "2012-10-17", **policy, "Statement": statements} if statements else None
        )
    if plan.added_public_read:
        report.add(f"{prefix} made publicly readable for PUBLIC_BASE_URL")
    if plan.removed:
        report.add(
            f"bucket {bucket} made private again: removed anonymous statement(s) "
            f"{_names(plan.removed)} (they opened {prefix} to reading, writing or listing)"
        )
    if plan.narrowed:
        report.add(
            f"bucket {bucket}: anonymous statement(s) {_names(plan.narrowed)} no longer cover "
            f"{prefix}; kept for their other resources"
        )
    if plan.foreign:
        report.add(
            f"bucket {bucket}: left anonymous statement(s) {_names(plan.foreign)} alone: they "
            f"cover other prefixes only, not {prefix}; review them if they are not meant"
        )
    if not plan.changed:
        report.add(
            f"{prefix} is publicly readable (PUBLIC_BASE_URL mode), nothing else"
            if settings.public_read_prefix
            else f"{prefix} in bucket {bucket} is private (links are signed)"
        )


def _names(statements: tuple[dict[str, Any], ...]) -> str:
    return ", ".join(describe(s) for s in statements)


def create_bot_user(settings: Settings, name: str, admin: BucketAdmin) -> tuple[str, str]:
    """Create or update MinIO user ``name`` with the bot policy; return its new key pair.

    Uses MinIO's admin API through minio-py (no ``mc`` binary); needs admin keys. Running it
    again keeps one user and rotates its secret. Runs for the same user are serialised by a lease
    in the bucket, so two at once cannot both print a secret when only the last one works; the
    new secret is then proven with the bot's own health probe before it is printed.
    """
    if settings.s3_provider != "minio":
        raise UsageError(
            "--bot-user",
            "creating users works with MinIO only; for COS or S3 "
            "create a sub-user with infra/minio/imgbot-bot-policy.json; for SeaweedFS add the "
            "bot identity of infra/seaweedfs/s3.json to its -s3.config file and restart it",
        )
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{3,64}", name):
        raise UsageError("--bot-user", "use 3-64 letters, digits, '_', '.', '@' or '-'")
    secret = secrets.token_urlsafe(30)
    try:
        with admin.lease(f".imgbot-setup/bot-user-{name}.lease", BOT_USER_LEASE_SECONDS):
            _set_bot_user(settings, name, secret)
            _prove(settings, name, secret)
    except LeaseHeld as exc:
        raise StorageError(
            f"another `imgbot setup --bot-user {name}` is running ({exc}); let it finish and "
            f"use its keys, or run again in {BOT_USER_LEASE_SECONDS - exc.age:.0f} s if it died",
            code="Busy",
        ) from None
    return name, secret


def _set_bot_user(settings: Settings, name: str, secret: str) -> None:
    from urllib.parse import urlsplit

    import urllib3
    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider
    from minio.error import MinioAdminException

    endpoint = urlsplit(settings.endpoint)
    admin = MinioAdmin(
        endpoint=str(endpoint.netloc),
        secure=endpoint.scheme == "https",
        region=settings.region,
        credentials=StaticProvider(
            settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value()
        ),
    )
    policy_name = f"imgbot-{settings.s3_bucket}"
    try:
        admin.user_add(name, secret)
        admin.policy_add(
            policy_name, policy=bot_user_policy(settings.s3_bucket, settings.s3_prefix)
        )
        try:
            admin.attach_policy([policy_name], user=name)
        except MinioAdminException as exc:
            if "already in effect" not in str(exc):  # attached on an earlier run
                raise
    except MinioAdminException as exc:
        raise StorageError(
            f"MinIO admin API refused: {_admin_reason(exc)}", code="AdminError"
        ) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        raise StorageError(
            f"MinIO admin API at {settings.endpoint} unreachable: {type(exc).__name__}",
            code=type(exc).__name__,
        ) from None
    log.info("bot user %s has policy %s", name, policy_name)


def _prove(settings: Settings, name: str, secret: str) -> None:
    """Fail unless the new key pair passes the bot's own health probe on the bucket."""
    client = build_client(settings, access_key=name, secret_key=secret)
    try:
        S3Storage(client, settings.s3_bucket).probe()
    except StorageError as exc:
        raise StorageError(
            f"bot user {name}: the new secret does not work ({exc.code}); something else "
            f"changed the user at the same time: run imgbot setup --bot-user {name} again",
            code="BotUserUnproven",
        ) from None


def _admin_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    match = re.search(r'"Message"\s*:\s*"([^"]+)"', text)
    return (match.group(1) if match else text)[:200]
