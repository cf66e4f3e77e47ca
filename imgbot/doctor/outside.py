"""Doctor's checks of the world outside the storage: the address phones use, DingTalk's keys."""

from __future__ import annotations

import ipaddress
import json
import socket
from urllib.parse import urlsplit

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check, http_call


def public_address(settings: Settings) -> Check:
    """Can phones reach the link origin: public, resolvable, https (with DingTalk keys)?"""
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


def access_token(settings: Settings) -> str | None:
    """A token for DingTalk's keys, for checks that call its APIs; None when none was issued."""
    try:
        status, answer = _ask_token(settings)
    except (OSError, ValueError):
        return None
    return _access_token(answer) if 200 <= status < 300 else None


def _ask_token(settings: Settings) -> tuple[int, bytes]:
    base = settings.dingtalk_openapi_endpoint.rstrip("/")
    secret = settings.dingtalk_client_secret
    body = json.dumps(
        {
            "appKey": settings.dingtalk_client_id,
            "appSecret": secret.get_secret_value() if secret else "",
        }
    ).encode()
    status, _, answer = http_call(
        base + "/v1.0/oauth2/accessToken",
        10,
        method="POST",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    return status, answer


def dingtalk(settings: Settings) -> Check:
    """Do the DingTalk keys get an access token?"""
    base = settings.dingtalk_openapi_endpoint.rstrip("/")
    try:
        status, answer = _ask_token(settings)
    except (OSError, ValueError) as exc:
        return Check(
            "dingtalk",
            False,
            f"{base} unreachable ({type(exc).__name__})",
            "check the network to DingTalk",
        )
    if not 200 <= status < 300:
        return Check(
            "dingtalk",
            False,
            f"credentials refused (HTTP {status})",
            "check DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET",
        )
    token = _access_token(answer)
    if not token:
        return Check(
            "dingtalk",
            False,
            "no access token returned",
            "check DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET",
        )
    return Check("dingtalk", True, "credentials accepted (access token issued)")


def _access_token(answer: bytes) -> str | None:
    """The ``accessToken`` of DingTalk's JSON answer; None when there is none."""
    try:
        document = json.loads(answer)
    except ValueError:
        return None
    token = document.get("accessToken") if isinstance(document, dict) else None
    return token if isinstance(token, str) and token else None
