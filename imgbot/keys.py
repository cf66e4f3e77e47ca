"""Object key naming: date folders under the prefix and an unguessable token; no user text."""

from __future__ import annotations

import base64
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
