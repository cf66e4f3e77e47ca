"""What an http(s) URL setting may look like: the rules every endpoint and base URL follows."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def _shown(value: str) -> str:
    """``value`` for an error message, with anything before an '@' (a password) hidden."""
    return repr(re.sub(r"[^/@]*@", "…@", value))


def check_url(value: str, *, origin: bool) -> str:
    """``value`` without trailing slashes if imgbot can use it as an http(s) base, else ValueError.

    ``origin`` refuses a path too (SigV4 signs the path, so an endpoint cannot carry one).
    Messages never repeat a user name or password.
    """
    parts = urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError("must not hold a user name or password (user:password@host)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"must not hold spaces or control characters: {_shown(value)}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {_shown(value)}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"has an invalid port (1-65535 allowed): {_shown(value)}")
    if "?" in value or "#" in value:
        raise ValueError(f"must not hold a query or fragment: {_shown(value)}")
    if origin and parts.path not in ("", "/"):
        raise ValueError(f"must be an origin without a path (signatures cover the path): {value!r}")
    return value.rstrip("/")
