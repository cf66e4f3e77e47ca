"""``imgbot setup``: make the bucket ready, idempotently, without disturbing others' settings.

Creates the bucket if missing, merges our lifecycle rule into the existing rules (S3 replaces the
whole configuration on write, so we read, merge by rule ID, and write back), and keeps our prefix
private: every anonymous grant (read, write, list, wildcards) that reaches it is removed, grants
on other prefixes are left to their owners, and with ``PUBLIC_BASE_URL`` exactly one anonymous
read statement for our prefix is kept. ``--bot-user`` also creates the bot's MinIO user.
What the bucket should look like is decided in ``bucket_rules``; this module does the I/O.

Each step is reported as it is done, so a failure later on leaves the earlier lines shown. On a
server without the lifecycle API (versitygw, for one) the bucket is still made private, and setup
then fails unless RETENTION_MANAGED_ELSEWHERE (or ``--retention-elsewhere``) names what deletes
old images instead.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgbot.bucket.admin import BucketAdmin, LeaseHeld, LifecycleUnsupported
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
from imgbot.errors import ConfigError, StorageError, UsageError
from imgbot.storage_s3 import S3Storage, build_client

if TYPE_CHECKING:
    from minio import MinioAdmin
    from minio.error import MinioAdminException

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


NO_EXPIRY = "this storage cannot expire objects: images would be kept for ever"
"""Setup's line for a server without the lifecycle API."""


def _quiet(line: str) -> None:
    """Show nothing (the lines are still kept in the report)."""


@dataclass
class SetupReport:
    """What setup did, line by line; ``show`` prints each line as it is done."""

    lines: list[str] = field(default_factory=list)
    show: Callable[[str], None] = _quiet

    def add(self, line: str) -> None:
        """Record one thing done, and show it now."""
        log.info("%s", line)
        self.lines.append(line)
        self.show(line)


def setup(
    admin: BucketAdmin, settings: Settings, show: Callable[[str], None] = _quiet
) -> SetupReport:
    """Create the bucket if needed, merge our lifecycle rule, keep the bucket's access right.

    Each step goes to ``show`` as it is done. Without a lifecycle API on the server the access
    steps still run; then ``StorageError`` (code ``LifecycleUnsupported``) unless
    ``RETENTION_MANAGED_ELSEWHERE`` names what deletes old images.
    """
    report = SetupReport(show=show)
    try:
        if admin.exists():
            report.add(f"bucket {admin.bucket} exists")
        else:
            admin.create(settings.region)
            report.add(f"bucket {admin.bucket} created")
        expires = _ensure_lifecycle(admin, settings, report)
        if admin.server_software().startswith("SeaweedFS"):
            report.add(_SEAWEEDFS_EXPIRY)
        _ensure_access(admin, settings, report)
    except StorageError as exc:
        if exc.code == "AccessDenied":
            raise StorageError(f"{exc}; {_NEEDS_ADMIN}", code=exc.code) from None
        raise
    if not expires:
        raise StorageError(
            "setup not finished: nothing deletes old images; if something else does (a cron job, "
            "the provider's console), name it with --retention-elsewhere WHAT or "
            "RETENTION_MANAGED_ELSEWHERE=WHAT and run setup again",
            code="LifecycleUnsupported",
        )
    return report


def _ensure_lifecycle(admin: BucketAdmin, settings: Settings, report: SetupReport) -> bool:
    """Set our rule; False when the server cannot expire objects and nothing else is named."""
    ours = lifecycle_rule(settings.s3_prefix, settings.image_retention_days, settings.s3_provider)
    try:
        rules = admin.lifecycle_rules()
    except LifecycleUnsupported:
        elsewhere = settings.retention_managed_elsewhere
        if not elsewhere:
            report.add(f"lifecycle: {NO_EXPIRY}")
            return False
        report.add(
            f"lifecycle: not supported by this server; old images under {settings.s3_prefix} "
            f"are deleted by: {elsewhere} (RETENTION_MANAGED_ELSEWHERE)"
        )
        return True
    current = our_rule(rules)
    if current is not None and same_rule(current, ours):
        report.add(
            f"lifecycle rule {RULE_ID} already expires {settings.s3_prefix} after "
            f"{settings.image_retention_days} days"
        )
        return True
    admin.put_lifecycle_rules(merge_rule(rules, ours))
    kept = len(rules) - (current is not None)
    report.add(
        f"lifecycle rule {RULE_ID} set: expire {settings.s3_prefix} after "
        f"{settings.image_retention_days} days ({kept} other rule(s) kept)"
    )
    return True


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


def check_bot_user(settings: Settings, name: str) -> None:
    """Refuse ``--bot-user NAME`` before setup changes anything: a provider other than MinIO, a
    bad name, or a server at S3_ENDPOINT that does not speak MinIO's admin API (asked with a
    read-only call, MinIO's account info for the admin keys)."""
    if settings.s3_provider != "minio":
        raise UsageError(
            "--bot-user",
            "creating users works with MinIO only; for COS or S3 "
            "create a sub-user with infra/minio/imgbot-bot-policy.json; for SeaweedFS add the "
            "bot identity of infra/seaweedfs/s3.json to its -s3.config file and restart it",
        )
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{3,64}", name):
        raise UsageError("--bot-user", "use 3-64 letters, digits, '_', '.', '@' or '-'")
    with _admin_api(settings) as admin:
        admin.account_info()


def create_bot_user(settings: Settings, name: str, admin: BucketAdmin) -> tuple[str, str]:
    """Create or update MinIO user ``name`` with the bot policy; return its new key pair.

    Uses MinIO's admin API through minio-py (no ``mc`` binary); needs admin keys. Running it
    again keeps one user and rotates its secret. Runs for the same user are serialised by a lease
    in the bucket, so two at once cannot both print a secret when only the last one works; the
    new secret is then proven with the bot's own health probe before it is printed.
    """
    check_bot_user(settings, name)
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


@contextmanager
def _admin_api(settings: Settings) -> Iterator[MinioAdmin]:
    """MinIO's admin client for S3_ENDPOINT with the admin keys; its failures as StorageError,
    a server that is not MinIO named as such."""
    from urllib.parse import urlsplit

    import urllib3
    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider
    from minio.error import MinioAdminException

    endpoint = urlsplit(settings.endpoint)
    client = MinioAdmin(
        endpoint=str(endpoint.netloc),
        secure=endpoint.scheme == "https",
        region=settings.region,
        credentials=StaticProvider(
            settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value()
        ),
    )
    try:
        yield client
    except MinioAdminException as exc:
        if _not_minio(exc):
            # A configuration error (exit 2): S3_PROVIDER names the wrong kind of server.
            raise ConfigError(
                "S3_PROVIDER",
                f"minio, but the server at {settings.endpoint} does not speak MinIO's admin "
                "API; it is not MinIO: set S3_PROVIDER=s3 and create the bot's user with that "
                "server's own tools (the policy is in infra/minio/imgbot-bot-policy.json), "
                "leaving out --bot-user",
            ) from None
        raise StorageError(
            f"MinIO admin API refused: {_admin_reason(exc)}", code="AdminError"
        ) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        raise StorageError(
            f"MinIO admin API at {settings.endpoint} unreachable: {type(exc).__name__}",
            code=type(exc).__name__,
        ) from None


def _not_minio(exc: MinioAdminException) -> bool:
    """MinIO answers every admin call it knows with JSON; no route (404, 405, 501), or a refusal
    in another format (an S3 XML error), means another server answered. A proxy's 5xx page is
    not taken for one."""
    # minio-py's own spelling: "admin request failed; Status: CODE, Body: BODY".
    match = re.search(r"Status: ([^,]*), Body: (.*)", str(exc), re.DOTALL)
    if match is None:
        return False
    status, body = match.group(1).strip(), match.group(2).strip()
    return status in ("404", "405", "501") or (status.startswith("4") and not body.startswith("{"))


def _set_bot_user(settings: Settings, name: str, secret: str) -> None:
    from minio.error import MinioAdminException

    policy_name = f"imgbot-{settings.s3_bucket}"
    with _admin_api(settings) as admin:
        admin.user_add(name, secret)
        admin.policy_add(
            policy_name, policy=bot_user_policy(settings.s3_bucket, settings.s3_prefix)
        )
        try:
            admin.attach_policy([policy_name], user=name)
        except MinioAdminException as exc:
            if "already in effect" not in str(exc):  # attached on an earlier run
                raise
    log.info("bot user %s has policy %s", name, policy_name)


def _prove(settings: Settings, name: str, secret: str) -> None:
    """Fail unless the new key pair passes the bot's own health probe on the bucket."""
    client = build_client(settings, access_key=name, secret_key=secret)
    try:
        S3Storage(client, settings.s3_bucket, prefix=settings.s3_prefix).probe()
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
