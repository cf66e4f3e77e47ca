"""One doctor check's result, and the one HTTP helper the checks call (unsigned, as "anyone"
would, or carrying DingTalk's keys in its body)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """One printable line."""
        status = "ok     " if self.ok else "PROBLEM"
        text = f"{status} {self.name:<18} {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text


def http_get(url: str, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without credentials; HTTP errors are answers, not exceptions."""
    return http_call(url, timeout)


def http_call(
    url: str,
    timeout: float,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request (credentials only as ``body`` carries them); HTTP errors are answers,
    not exceptions."""
    request = urllib.request.Request(  # noqa: S310 (http/https origins, validated in config)
        url, data=body, method=method, headers=dict(headers or {})
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def anonymous_status(url: str, timeout: float, *, method: str = "GET", body: bytes = b"") -> int:
    """The HTTP status an unsigned request gets; 0 when nothing answers."""
    try:
        return http_call(url, timeout, method=method, body=body or None)[0]
    except (OSError, ValueError):
        return 0
