"""The pure bucket rules: which policy statements open our prefix, and what setup keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgbot.bucket.rules import (
    bot_user_policy,
    grants_anyone,
    plan_policy,
    public_read_statement,
    touches_prefix,
)
from tests.processes import ROOT

B, P = "imgbot", "imagegen/"


def anon(resource: Any, action: Any = "s3:GetObject", principal: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ["*"]},
        {"AWS": ["arn:aws:iam::1:root", "*"]},
        {"CanonicalUser": "*"},
    ],
)
def test_every_anonymous_principal_spelling_is_anyone(principal: Any) -> None:
    """Every way of writing "anyone" in a Principal counts as an anonymous grant."""
    assert grants_anyone(anon(f"arn:aws:s3:::{B}/*", principal=principal))


def test_named_principals_and_denies_are_not_anonymous() -> None:
    """A grant to a named account, or a Deny for anyone, is not an anonymous grant."""
    assert not grants_anyone(anon(f"arn:aws:s3:::{B}/*", principal={"AWS": ["arn:aws:iam::1:u"]}))
    assert not grants_anyone({**anon(f"arn:aws:s3:::{B}/*"), "Effect": "Deny"})
    assert grants_anyone({"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Resource": "*"})


@pytest.mark.parametrize(
    ("resource", "touches"),
    [
        (f"arn:aws:s3:::{B}", True),
        (f"arn:aws:s3:::{B}/*", True),
        (f"arn:aws:s3:::{B}/imagegen/*", True),
        (f"arn:aws:s3:::{B}/image*", True),
        (f"arn:aws:s3:::{B}/*/x.png", True),
        (f"arn:aws:s3:::{B}/imagegen/2026/??/*", True),
        ("arn:aws:s3:::img*", True),
        ("arn:aws:s3:::*", True),
        ("*", True),
        (f"arn:aws:s3:::{B}/public/*", False),
        (f"arn:aws:s3:::{B}/imagegen", False),
        (f"arn:aws:s3:::{B}/imagegenx/*", False),
        (f"arn:aws:s3:::{B}-other/*", False),
        ("arn:aws:s3:::other/*", False),
        (f"arn:aws:s3:::{B}?", False),
    ],
)
def test_resource_touches_prefix(resource: str, touches: bool) -> None:
    """A resource touches our prefix if its wildcards match the bucket or any key under it."""
    assert touches_prefix(resource, B, P) is touches


def test_plan_removes_ours_keeps_foreign_and_narrows_mixed() -> None:
    """Anonymous grants on our prefix go, other prefixes' stay, mixed ones keep only theirs."""
    named = {**anon(f"arn:aws:s3:::{B}/*"), "Principal": {"AWS": ["arn:aws:iam::1:u"]}}
    write = {**anon(f"arn:aws:s3:::{B}/*", ["s3:PutObject"]), "Sid": "w"}
    theirs = {**anon(f"arn:aws:s3:::{B}/public/*"), "Sid": "theirs"}
    mixed = {**anon([f"arn:aws:s3:::{B}/public/*", f"arn:aws:s3:::{B}/imagegen/*"]), "Sid": "m"}
    plan = plan_policy([named, write, theirs, mixed], B, P, public_read=False)
    assert plan.changed and plan.removed == (write,) and plan.foreign == (theirs,)
    assert plan.narrowed == (mixed,)
    assert plan.statements == (
        named,
        theirs,
        {**mixed, "Resource": [f"arn:aws:s3:::{B}/public/*"]},
    )


def test_plan_public_read_keeps_exactly_one_statement() -> None:
    """With PUBLIC_BASE_URL only our read statement stays (once); an anonymous PUT still goes."""
    ours = public_read_statement(B, P)
    minio_spelling = {k: v for k, v in ours.items() if k != "Sid"}  # MinIO drops nothing but Sid
    write = anon(f"arn:aws:s3:::{B}/imagegen/*", "s3:PutObject")
    plan = plan_policy([minio_spelling, write, ours], B, P, public_read=True)
    assert plan.statements == (minio_spelling,) and plan.removed == (write, ours)
    assert not plan_policy([ours], B, P, public_read=True).changed
    empty = plan_policy([], B, P, public_read=True)
    assert empty.added_public_read and empty.statements == (ours,)


def test_shipped_bot_policy_matches_setup() -> None:
    """infra/minio/imgbot-bot-policy.json is what `setup --bot-user` creates for the defaults."""
    shipped = json.loads((ROOT / "infra/minio/imgbot-bot-policy.json").read_text())
    assert shipped == bot_user_policy(B, P)


@pytest.mark.parametrize("provider", ["minio", "s3", "cos"])
def test_lifecycle_xml_puts_the_prefix_inside_filter(provider: str) -> None:
    """The rule as botocore sends it has <Filter><Prefix>, never a rule-level <Prefix> (Garage
    takes only the Filter form)."""
    import xml.etree.ElementTree as ET

    import botocore.session
    from botocore.serialize import create_serializer

    from imgbot.bucket.rules import lifecycle_rule

    model = botocore.session.get_session().get_service_model("s3")
    operation = model.operation_model("PutBucketLifecycleConfiguration")
    rule = lifecycle_rule("imagegen/", 7, provider)
    request = create_serializer("rest-xml").serialize_to_request(
        {"Bucket": "b", "LifecycleConfiguration": {"Rules": [rule]}}, operation
    )
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    [element] = ET.fromstring(request["body"]).findall(f"{ns}Rule")  # noqa: S314 (our own body)
    assert element.find(f"{ns}Prefix") is None
    assert element.findtext(f"{ns}Filter/{ns}Prefix") == "imagegen/"
    assert element.findtext(f"{ns}Expiration/{ns}Days") == "7"
