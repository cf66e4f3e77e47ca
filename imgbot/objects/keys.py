"""Object key naming: date folders under the prefix and an unguessable token; no user text.

This module is the one definition of what our keys look like: ``object_keys`` makes them,
``is_our_key`` checks a key named in a request, ``key_tail_at_end`` finds one at the end of a
quoted link's path, and ``key_label`` is how logs name one without giving it away.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime

TOKEN_BYTES = 16  # 128 random bits
EXTENSIONS = ("png", "jpg", "webp")
"""The types our objects are named with (originals and previews): what renditions encode."""
_TAIL = (
    r"[0-9]{4}/[0-9]{2}/[0-9]{2}/[a-z2-7]{26}(?:\.preview)?\.(?:"
    + "|".join(map(re.escape, EXTENSIONS))
    + ")"
)
_KEY_TAIL = re.compile(_TAIL)
_AT_END = re.compile(rf"(?:\A|/)({_TAIL})\Z")
_LABEL_CHARS = 6
"""Token characters a log line shows: enough to find the object in its day's folder, 30 of the
128 bits, so the label is no way to the picture."""


def new_token() -> str:
    """Return 26 lowercase base32 characters holding 128 random bits."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def object_keys(prefix: str, now: datetime, ext: str, preview_ext: str) -> tuple[str, str]:
    """Return the original's and the preview's keys for one image stored at ``now`` (UTC).

    ``ext`` and ``preview_ext`` must be ``EXTENSIONS``: a key the bot makes is always one that
    ``is_our_key`` and ``key_tail_at_end`` recognise.
    """
    for given in (ext, preview_ext):
        if given not in EXTENSIONS:
            raise ValueError(f"{given!r} is not one of the stored types {EXTENSIONS}")
    folder = f"{prefix}{now:%Y/%m/%d}/"
    token = new_token()
    return f"{folder}{token}.{ext}", f"{folder}{token}.preview.{preview_ext}"


def is_our_key(prefix: str, key: str) -> bool:
    """True when ``key`` has the shape ``object_keys`` gives under ``prefix`` (original or
    preview): a key named by anyone else, or leaving the prefix, is not one of ours."""
    return key.startswith(prefix) and _KEY_TAIL.fullmatch(key[len(prefix) :]) is not None


def key_tail_at_end(path: str) -> str:
    """The key without its prefix (``yyyy/mm/dd/token[.preview].ext``) that ``path`` ends with,
    as a whole path segment run; "" when it ends with none of ours."""
    match = _AT_END.search(path)
    return match.group(1) if match else ""


def is_preview(key: str) -> bool:
    """True when ``key`` (one of ours, with or without prefix) names a preview."""
    return key.rsplit("/", 1)[-1].split(".")[1:2] == ["preview"]


def key_label(key: str) -> str:
    """How a log line at INFO names one of our keys: its day folder and the first characters
    of its token. The whole key is a link to the picture wherever links are public, and users'
    own pictures are stored under such keys; the whole key is logged at DEBUG only."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/{name[:_LABEL_CHARS]}..." if name else "(none)"
