"""``imgbot setup``: make the bucket ready, idempotently, without disturbing others' settings.

Creates the bucket if missing, merges our lifecycle rule into the existing rules (S3 replaces the
whole configuration on write, so we read, merge by rule ID, and write back), and keeps the bucket
private: in presigned mode anonymous-read statements are removed from the bucket policy; with
``PUBLIC_BASE_URL`` exactly one anonymous read statement for our prefix is kept.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from imgbot.config import Settings
from imgbot.storage_s3 import S3Storage

log = logging.getLogger(__name__)
RULE_ID = "imgbot-expire-images"
PUBLIC_SID = "imgbot-public-read"


@dataclass
class SetupReport:
    """What setup did, line by line, for the CLI to print."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record one thing done."""
        log.info("%s", line)
        self.lines.append(line)


def lifecycle_rule(prefix: str, days: int, provider: str) -> dict[str, Any]:
    """Our rule: expire objects under ``prefix`` after ``days`` days."""
    rule: dict[str, Any] = {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Expiration": {"Days": days},
    }
    # MinIO rejects AbortIncompleteMultipartUpload (it drops stale uploads itself after 24 h).
    if provider != "minio":
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": 1}
    return rule


def merge_rule(rules: list[dict[str, Any]], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """Return ``rules`` with ``ours`` replacing any rule of the same ID, others kept in order."""
    merged = [copy.deepcopy(r) for r in rules if r.get("ID") != ours["ID"]]
    merged.append(ours)
    return merged


def is_anonymous_read(statement: dict[str, Any]) -> bool:
    """True if ``statement`` lets anyone read objects or list keys (wildcards included)."""
    if statement.get("Effect") != "Allow":
        return False
    return _anyone(statement.get("Principal")) and any(
        fnmatch.fnmatchcase(action, pattern.lower())
        for pattern in _as_list(statement.get("Action"))
        for action in ("s3:getobject", "s3:listbucket")
    )


def _anyone(principal: Any) -> bool:
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    return "*" in _as_list(principal)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def public_read_statement(bucket: str, prefix: str) -> dict[str, Any]:
    """The one anonymous-read statement PUBLIC_BASE_URL mode needs."""
    return {
        "Sid": PUBLIC_SID,
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
    }


def setup(storage: S3Storage, settings: Settings) -> SetupReport:
    """Create the bucket if needed, merge our lifecycle rule, keep the bucket's access right."""
    report = SetupReport()
    if storage.bucket_exists():
        report.add(f"bucket {storage.bucket} exists")
    else:
        storage.create_bucket(settings.region)
        report.add(f"bucket {storage.bucket} created")
    _ensure_lifecycle(storage, settings, report)
    _ensure_access(storage, settings, report)
    return report


def _ensure_lifecycle(storage: S3Storage, settings: Settings, report: SetupReport) -> None:
    ours = lifecycle_rule(settings.s3_prefix, settings.image_retention_days, settings.s3_provider)
    rules = storage.lifecycle_rules()
    current = next((r for r in rules if r.get("ID") == RULE_ID), None)
    if current is not None and _same_rule(current, ours):
        report.add(
            f"lifecycle rule {RULE_ID} already expires {settings.s3_prefix} after "
            f"{settings.image_retention_days} days"
        )
        return
    storage.put_lifecycle_rules(merge_rule(rules, ours))
    kept = len(rules) - (current is not None)
    report.add(
        f"lifecycle rule {RULE_ID} set: expire {settings.s3_prefix} after "
        f"{settings.image_retention_days} days ({kept} other rule(s) kept)"
    )


def _same_rule(current: dict[str, Any], ours: dict[str, Any]) -> bool:
    keys = ("Status", "Expiration", "AbortIncompleteMultipartUpload")
    prefix = current.get("Filter", {}).get("Prefix", current.get("Prefix"))
    return prefix == ours["Filter"]["Prefix"] and all(current.get(k) == ours.get(k) for k in keys)


def _ensure_access(storage: S3Storage, settings: Settings, report: SetupReport) -> None:
    if storage.make_acl_private():
        report.add(f"bucket {storage.bucket}: public ACL grants removed (ACL set to private)")
    policy = storage.policy()
    statements: list[dict[str, Any]] = list((policy or {}).get("Statement", []))
    # Every anonymous read or list grant goes, except our own prefix grant in PUBLIC_BASE_URL mode.
    wanted = (
        [public_read_statement(storage.bucket, settings.s3_prefix)]
        if settings.public_base_url
        else []
    )
    public = [s for s in statements if is_anonymous_read(s) and s not in wanted]
    kept = [s for s in statements if not is_anonymous_read(s)]
    if not public and all(w in statements for w in wanted):
        report.add(
            f"{settings.s3_prefix} is publicly readable (PUBLIC_BASE_URL mode), nothing else"
            if wanted
            else f"bucket {storage.bucket} is private (links are presigned)"
        )
        return
    new = [*kept, *wanted]
    storage.put_policy(
        {"Version": "2012-10-17", **(policy or {}), "Statement": new} if new else None
    )
    if wanted:
        report.add(f"{settings.s3_prefix} made publicly readable for PUBLIC_BASE_URL")
    if public:
        names = ", ".join(str(s.get("Sid") or "(no Sid)") for s in public)
        report.add(
            f"bucket {storage.bucket} made private again: removed anonymous statement(s) {names}"
        )


def bot_user_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Least privilege for the bot: read and write objects under the prefix, read lifecycle.

    No listing, no deleting, no policy or lifecycle changes; ``imgbot doctor`` needs only these.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ImgbotObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
            },
            {
                "Sid": "ImgbotBucketChecks",
                "Effect": "Allow",
                # Not s3:GetBucketLocation: MinIO lists the buckets a user may locate.
                "Action": ["s3:GetLifecycleConfiguration"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }


def create_bot_user(settings: Settings, name: str) -> tuple[str, str]:
    """Create or update MinIO user ``name`` with the bot policy; return its new key pair.

    Uses MinIO's admin API through minio-py (no ``mc`` binary); needs admin credentials.
    Running it again keeps one user and rotates its secret.
    """
    import secrets
    from urllib.parse import urlsplit

    import urllib3
    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider
    from minio.error import MinioAdminException

    from imgbot.errors import StorageError, UsageError

    if settings.s3_provider != "minio":
        raise UsageError(
            "--bot-user",
            "creating users works with MinIO only; for COS or S3 "
            "create a sub-user with infra/minio/imgbot-bot-policy.json",
        )
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{3,64}", name):
        raise UsageError("--bot-user", "use 3-64 letters, digits, '_', '.', '@' or '-'")
    endpoint = urlsplit(settings.endpoint)
    admin = MinioAdmin(
        endpoint=str(endpoint.netloc),
        secure=endpoint.scheme == "https",
        region=settings.region,
        credentials=StaticProvider(
            settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value()
        ),
    )
    secret = secrets.token_urlsafe(30)
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
    return name, secret


def _admin_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    match = re.search(r'"Message"\s*:\s*"([^"]+)"', text)
    return (match.group(1) if match else text)[:200]
