"""What an http(s) URL setting may look like: the rules every endpoint and base URL follows."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def _shown(value: str) -> str:
    """``value`` for an error message, with anything before an '@' (a password) and any query or
    fragment (it may hold a key) hidden."""
    shown = re.sub(r"[^/@]*@", "…@", value)
    for mark in "?#":
        if mark in shown:
            shown = shown.split(mark, 1)[0] + mark + "…"
    return repr(shown)


def check_url(value: str, *, origin: bool) -> str:
    """``value`` without trailing slashes if imgbot can use it as an http(s) base, else ValueError.

    ``origin`` refuses a path too (SigV4 signs the path, so an endpoint cannot carry one).
    Messages never repeat a user name or password.
    """
    if "\\" in value:  # browsers read it as "/", urlsplit as part of the host
        raise ValueError(f"must not hold a backslash: {_shown(value)}")
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


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


def check_link_base(value: str) -> str:
    """``value`` if links may start with it (PUBLIC_BASE_URL), else ValueError.

    A CDN signs the path a browser requests, so the base path must be requested exactly as
    written: segments of letters, digits and ``- . _ ~``, none ``.`` or ``..``, no empty one.
    Anything else (``/图片``, ``%E5``, ``/a/../b``, ``//``) is changed by the browser on the way
    (encoded, decoded or resolved) and every signed link would be refused.
    """
    base = check_url(value, origin=False)
    path = urlsplit(base).path
    segments = path.split("/")[1:] if path else []
    if not all(_PLAIN_SEGMENT.fullmatch(one) and one not in (".", "..") for one in segments):
        raise ValueError(
            "its path may hold only letters, digits, '-', '.', '_' and '~' between single "
            f"slashes, no '.' or '..' segment (links are signed over the path as written): "
            f"{_shown(value)}"
        )
    return base
