"""Tencent Cloud CDN / EdgeOne URL authentication: signed links for a CDN before a private bucket.

The CDN fetches from the private bucket with its own credentials (back-to-origin authentication)
and its edge checks a signature in the URL. Two of Tencent's documented types:

- type A: ``{base}{path}?sign={timestamp}-{rand}-{uid}-{md5hash}`` where ``md5hash`` is the md5
  of ``"{path}-{timestamp}-{rand}-{uid}-{key}"`` and ``uid`` is 0
- type D: ``{base}{path}?sign={md5(key + path + timestamp)}&t={timestamp}``

``timestamp`` is the signing time in decimal Unix seconds; the CDN console sets how long after it
a signature stays valid, which must equal imgbot's link lifetime (``PRESIGN_TTL_SECONDS``).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

CdnAuthType = Literal["tencent-a", "tencent-d"]
UID = "0"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def sign_query(kind: CdnAuthType, key: str, path: str, timestamp: int, rand: str = "") -> str:
    """The query string (without ``?``) that authenticates ``path`` signed at ``timestamp``.

    ``path`` is the URL path as the edge sees it (percent-encoded, starting with ``/``); ``rand``
    (type A only) is 0-100 letters and digits, new for each link unless given.
    """
    if kind == "tencent-a":
        rand = rand or secrets.token_hex(8)
        digest = _md5(f"{path}-{timestamp}-{rand}-{UID}-{key}")
        return f"sign={timestamp}-{rand}-{UID}-{digest}"
    return f"sign={_md5(f'{key}{path}{timestamp}')}&t={timestamp}"
