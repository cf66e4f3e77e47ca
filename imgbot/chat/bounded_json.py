"""JSON from outside (stream frames, their payloads, quoted contents), parsed within a depth.

``json.loads`` recurses once per nesting level: about a thousand levels of ``[`` (a few KB) raise
``RecursionError``, which is not a ``ValueError`` and escapes every handler written for bad JSON.
``loads`` turns that into ``TooDeep`` (a ``ValueError``) and refuses anything nested deeper than
``MAX_JSON_DEPTH``, so what it returns can be walked, validated or dumped again anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from imgbot.errors import ImgbotError

MAX_JSON_DEPTH = 64
"""Nesting levels (objects and arrays) any JSON we read may have. A stream frame nests 2 levels,
its chatbot payload about 6 with a quoted richText, and a card a few more; 64 is far above any of
them and far below Python's recursion limit (1000), so no consumer of the result recurses
dangerously. Not a setting: no real message comes near it."""


class TooDeep(ImgbotError, ValueError):
    """The JSON nests deeper than ``MAX_JSON_DEPTH``."""


def loads(text: str | bytes) -> Any:
    """``text`` parsed as JSON; ``TooDeep`` beyond ``MAX_JSON_DEPTH`` levels, another
    ``ValueError`` when it is not JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def depth(value: object, limit: int) -> int:
    """How many levels of objects and arrays ``value`` nests (0 for a scalar), counted without
    recursion and only up to ``limit + 1``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack and deepest <= limit:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
