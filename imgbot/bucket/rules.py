"""The rules imgbot keeps on its bucket, as pure values: lifecycle rule, bucket policy, bot policy.

No I/O here: ``imgbot setup`` reads the bucket, asks these functions what it should look like and
writes the answer back; ``imgbot doctor`` uses the same definitions to judge what it finds.
Policy resources use IAM wildcards (``*`` any run of characters, ``/`` included; ``?`` one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RULE_ID = "imgbot-expire-images"
PUBLIC_SID = "imgbot-public-read"
Statement = dict[str, Any]


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


def our_rule(rules: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The rule imgbot wrote (found by its ID), or None."""
    return next((r for r in rules if r.get("ID") == RULE_ID), None)


def rule_prefix(rule: dict[str, Any]) -> str | None:
    """The prefix a rule covers, in either the current (Filter) or the legacy spelling."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix"))
    return None if prefix is None else str(prefix)


def same_rule(current: dict[str, Any], ours: dict[str, Any]) -> bool:
    """True if ``current`` already does what ``ours`` asks (prefix, status, expiry, aborts)."""
    keys = ("Status", "Expiration", "AbortIncompleteMultipartUpload")
    return rule_prefix(current) == rule_prefix(ours) and all(
        current.get(k) == ours.get(k) for k in keys
    )


def public_read_statement(bucket: str, prefix: str) -> Statement:
    """The one anonymous-read statement PUBLIC_BASE_URL mode needs."""
    return {
        "Sid": PUBLIC_SID,
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
    }


def grants_anyone(statement: Statement) -> bool:
    """True if ``statement`` allows unsigned requests: any principal spelling with a wildcard."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotPrincipal" in statement:  # "everyone except …" includes anonymous callers
        return True
    principal = statement.get("Principal")
    values = principal.values() if isinstance(principal, dict) else [principal]
    return any("*" in entry for value in values for entry in _as_list(value))


def touches_prefix(resource: str, bucket: str, prefix: str) -> bool:
    """True if ``resource`` covers the bucket itself or any key under ``prefix``.

    The bucket ARN counts because bucket-level actions (listing) reveal our keys.
    """
    return _matches(resource, f"arn:aws:s3:::{bucket}") or _can_extend(
        resource, f"arn:aws:s3:::{bucket}/{prefix}"
    )


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """What the bucket policy should become, and why, for setup to write and report."""

    statements: tuple[Statement, ...]
    removed: tuple[Statement, ...]  # anonymous grants on our prefix, dropped whole
    narrowed: tuple[Statement, ...]  # anonymous grants that keep only their other resources
    foreign: tuple[Statement, ...]  # anonymous grants on other prefixes only: left alone
    added_public_read: bool

    @property
    def changed(self) -> bool:
        """True if the policy must be written."""
        return bool(self.removed or self.narrowed or self.added_public_read)


def plan_policy(
    statements: Iterable[Statement], bucket: str, prefix: str, *, public_read: bool
) -> PolicyPlan:
    """Drop every anonymous grant on our prefix; with ``public_read`` keep exactly our own."""
    wanted = public_read_statement(bucket, prefix)
    kept: list[Statement] = []
    removed: list[Statement] = []
    narrowed: list[Statement] = []
    foreign: list[Statement] = []
    has_wanted = False
    for statement in statements:
        if not grants_anyone(statement):
            kept.append(statement)
        elif public_read and not has_wanted and same_grant(statement, wanted):
            has_wanted = True
            kept.append(statement)
        else:
            others = _other_resources(statement, bucket, prefix)
            if others is None:
                removed.append(statement)
            elif others == _as_list(statement.get("Resource")):
                foreign.append(statement)
                kept.append(statement)
            else:
                narrowed.append(statement)
                kept.append({**statement, "Resource": others})
    added = public_read and not has_wanted
    return PolicyPlan(
        tuple([*kept, wanted] if added else kept),
        tuple(removed),
        tuple(narrowed),
        tuple(foreign),
        added,
    )


def same_grant(statement: Statement, other: Statement) -> bool:
    """True if both grant the same actions on the same resources to anyone, unconditionally."""

    def shape(s: Statement) -> tuple[bool, frozenset[str], frozenset[str], bool]:
        actions = frozenset(a.lower() for a in _as_list(s.get("Action")))
        conditional = any(k in s for k in ("Condition", "NotAction", "NotResource"))
        return grants_anyone(s), actions, frozenset(_as_list(s.get("Resource"))), conditional

    return shape(statement) == shape(other)


def describe(statement: Statement) -> str:
    """A short name for a statement in a report line: its Sid, else what it grants."""
    if statement.get("Sid"):
        return str(statement["Sid"])
    actions = ",".join(_as_list(statement.get("Action"))) or "NotAction"
    resources = ",".join(_as_list(statement.get("Resource"))) or "NotResource"
    return f"{actions} on {resources}"


def bot_user_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """Least privilege for the bot: read and write objects under the prefix, read lifecycle.

    No listing, no deleting, no policy or lifecycle changes. The minimum is the first statement:
    the bot's health probe (``S3Storage.probe``) is a conditional PUT under the prefix. The
    lifecycle read only lets ``imgbot doctor`` check the rule with the bot's keys (without it
    doctor says "not measured"); infra/minio/imgbot-bot-policy.json is this policy for the
    default bucket and prefix.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ImgbotObjectsPutUploadsGetOriginals",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
            },
            {
                "Sid": "ImgbotDoctorReadsLifecycle",
                "Effect": "Allow",
                # Not s3:GetBucketLocation: MinIO lists the buckets a user may locate.
                "Action": ["s3:GetLifecycleConfiguration"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }


def _other_resources(statement: Statement, bucket: str, prefix: str) -> list[str] | None:
    """The statement's resources that do not touch our prefix; None if it must go whole."""
    if "NotResource" in statement or "Resource" not in statement:
        return None  # "everything but …" (or nothing named): assume it covers us
    others = [
        r for r in _as_list(statement.get("Resource")) if not touches_prefix(r, bucket, prefix)
    ]
    return others or None


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _states(pattern: str, text: str) -> set[int]:
    """Positions in ``pattern`` reachable after matching all of ``text`` (IAM wildcards)."""

    def closure(states: set[int]) -> set[int]:
        todo = list(states)
        while todo:
            i = todo.pop()
            if i < len(pattern) and pattern[i] == "*" and i + 1 not in states:
                states.add(i + 1)
                todo.append(i + 1)
        return states

    states = closure({0})
    for char in text:
        states = closure(
            {
                i if pattern[i] == "*" else i + 1
                for i in states
                if i < len(pattern) and pattern[i] in ("*", "?", char)
            }
        )
        if not states:
            break
    return states


def _matches(pattern: str, text: str) -> bool:
    return len(pattern) in _states(pattern, text)


def _can_extend(pattern: str, text: str) -> bool:
    """True if ``pattern`` matches some string that starts with ``text``."""
    # Any pattern position left over can still match something (a literal, '?' or '*').
    return bool(_states(pattern, text))
