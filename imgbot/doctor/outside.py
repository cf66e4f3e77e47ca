"""Doctor's checks of the world outside the storage: the address phones use, DingTalk's keys."""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check


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


def dingtalk(settings: Settings) -> Check:
    """Do the DingTalk keys get an access token?"""
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
