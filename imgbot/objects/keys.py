"""Object key naming: date folders under the prefix and an unguessable token; no user text."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime

TOKEN_BYTES = 16  # 128 random bits


def new_token() -> str:
    """Return 26 lowercase base32 characters holding 128 random bits."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def object_keys(prefix: str, now: datetime, ext: str, preview_ext: str) -> tuple[str, str]:
    """Return the original's and the preview's keys for one image stored at ``now`` (UTC)."""
    folder = f"{prefix}{now:%Y/%m/%d}/"
    token = new_token()
    return f"{folder}{token}.{ext}", f"{folder}{token}.preview.{preview_ext}"


_KEY_TAIL = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2}/[a-z2-7]{26}(\.preview)?\.(png|jpg|webp)")


def is_our_key(prefix: str, key: str) -> bool:
    """True when ``key`` has the shape ``object_keys`` gives under ``prefix`` (original or
    preview): a key named by anyone else, or leaving the prefix, is not one of ours."""
    return key.startswith(prefix) and _KEY_TAIL.fullmatch(key[len(prefix) :]) is not None
