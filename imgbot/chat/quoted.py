"""What a DingTalk message points at as a picture: its download code, or one of our stored objects.

Shapes read (DingTalk documents none of the quoted ones; these are what widely used connectors
found in production, see README "Pictures"):

- ``picture`` content and richText items: ``{"downloadCode": …, "pictureDownloadCode": …}``;
  only ``downloadCode`` is used (the other one gets HTTP 500 from the download API).
- a quote: ``text.repliedMsg = {"msgType", "content"}``, ``content`` an object or a JSON string;
  quoted richText items are ``{"msgType": "picture", "downloadCode"}`` /
  ``{"msgType": "text", "content"}`` (or the top-level item shape).
- a quote of one of the bot's own replies (``markdown``, ``text``, ``interactiveCard``): its
  visible text carries our links, whose path ends in our object key; the key is taken from there.
  A native image reply quoted arrives as a ``picture`` with a download code like any other.

Everything here is pure and bounded: hostile shapes (wrong types, huge lists, strings holding JSON
holding strings) give ``None`` or are skipped, never an exception other than ``QuoteTooLarge`` or
``QuoteTooDeep``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from imgbot.chat import bounded_json
from imgbot.errors import ImgbotError
from imgbot.models import PictureRef
from imgbot.objects.keys import is_preview, key_tail_at_end

MAX_ITEMS = 200
"""richText lists longer than this are not a person's message."""
MAX_CODE_CHARS = 4096
MAX_QUOTED_JSON_CHARS = 65_536
"""A quoted ``content`` sent as a JSON string is parsed only up to this size, and only once."""
_MAX_DEPTH = 10  # card trees nest elements a few levels deep
_MAX_STRINGS = 500
_URL = re.compile(r"https?://[^\s)\]<>\"']{1,2048}")


class QuoteTooLarge(ImgbotError):
    """A list in the message is longer than any person's message."""


class QuoteTooDeep(ImgbotError):
    """A quoted content string holds JSON nested deeper than ``bounded_json.MAX_JSON_DEPTH``."""


def download_code(item: object) -> str:
    """The ``downloadCode`` of a picture content or item; "" when there is no usable one."""
    if not isinstance(item, dict):
        return ""
    code = item.get("downloadCode")
    if isinstance(code, str) and 0 < len(code) <= MAX_CODE_CHARS and code.strip() == code:
        return code
    return ""


def rich_text(items: object) -> tuple[str, PictureRef | None]:
    """The text items of a richText list joined, and its first picture: None when it has none,
    an empty ``PictureRef`` when it has pictures but none with a usable download code."""
    if not isinstance(items, list):
        return "", None
    if len(items) > MAX_ITEMS:
        raise QuoteTooLarge(f"richText has {len(items)} items")
    texts: list[str] = []
    picture: PictureRef | None = None
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("msgType", item.get("type", "text"))
        if kind == "picture" or "downloadCode" in item or "pictureDownloadCode" in item:
            code = download_code(item)
            if picture is None or (code and not picture.download_code):
                picture = PictureRef(download_code=code)
            continue
        text = item.get("text", item.get("content"))
        if isinstance(text, str):
            texts.append(text)
    return "\n".join(texts), picture


def quoted_content(replied: dict[str, Any]) -> object:
    """``repliedMsg.content``, parsed once when it arrives as a JSON string; ``QuoteTooDeep``
    when that JSON nests deeper than any message does."""
    content = replied.get("content")
    if isinstance(content, str) and len(content) <= MAX_QUOTED_JSON_CHARS:
        stripped = content.strip()
        if stripped.startswith(("{", "[")):
            try:
                return bounded_json.loads(stripped)
            except bounded_json.TooDeep as exc:
                raise QuoteTooDeep(str(exc)) from None
            except ValueError:
                return content
    return content


def quoted_picture(replied: object) -> PictureRef | None:
    """The picture a quoted message shows: its download code, or our stored key in its links."""
    if not isinstance(replied, dict):
        return None
    kind = replied.get("msgType")
    content = quoted_content(replied)
    if kind == "picture":
        code = download_code(content) or download_code(replied)
        return PictureRef(download_code=code) if code else None
    if kind == "richText":
        items = content.get("richText") if isinstance(content, dict) else content
        _, picture = rich_text(items)
        if picture is not None:
            return picture
    stored = stored_key(_strings(content, _MAX_DEPTH))
    return PictureRef(stored=stored) if stored else None


def stored_key(strings: Iterator[str]) -> str:
    """The key (without prefix) of the first original our links name, else of a preview; ""."""
    preview = ""
    for url in (m.group() for text in strings for m in _URL.finditer(text)):
        try:
            path = urlsplit(url).path
        except ValueError:  # not a URL after all, e.g. an unclosed "[" of an IPv6 host
            continue
        tail = key_tail_at_end(unquote(path))
        if tail and not is_preview(tail):
            return tail
        preview = preview or tail
    return preview


def _strings(value: object, depth: int) -> Iterator[str]:
    """The strings inside ``value`` (object values, list items), bounded in depth and count."""
    stack: list[tuple[object, int]] = [(value, depth)]
    seen = 0
    while stack and seen < _MAX_STRINGS:
        item, left = stack.pop()
        if isinstance(item, str):
            seen += 1
            yield item[:MAX_QUOTED_JSON_CHARS]
        elif left > 0 and isinstance(item, dict):
            stack.extend((v, left - 1) for v in list(item.values())[:MAX_ITEMS])
        elif left > 0 and isinstance(item, list):
            stack.extend((v, left - 1) for v in item[:MAX_ITEMS])
