"""One call to DingTalk and its answer, read the same way by every client in this package.

``exchange`` sends one request (the access token in DingTalk's header when given) and reads the
answer: at most ``MAX_ANSWER_BYTES``, decoded with bad bytes replaced (a proxy's GBK error page
is still an answer), parsed as JSON with nesting too deep for the parser counted as "not JSON".
What comes back is an ``Answer``: the HTTP status and the JSON object, or ``None`` with the reason
it is not one. A network error is a ``ReplyError``: ``retryable`` always, ``maybe_delivered``
unless the connection was never made. Nothing here raises anything else for what DingTalk sends.

The rules every client shares: ``errcode`` reads DingTalk's in-band code (oapi and webhooks);
``token_refused`` says DingTalk refused the access token (HTTP 401 or an oapi token errcode), and
``with_token`` then drops it from the shared cache and makes the call once more with a new one;
``redact`` turns outside text into one short line without the access token in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp

from imgbot.errors import ReplyError
from imgbot.net.capped_body import read_upto

T = TypeVar("T")
TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 (a header name, not a secret)
MAX_ANSWER_BYTES = 256 * 1024
"""The most of an answer read. DingTalk's JSON answers are a few hundred bytes (an error with its
permission list about 1 KB); anything longer is not an answer of theirs and is not read further.
Not a setting: no real answer comes near it."""
TOKEN_ERRCODES = frozenset({40001, 40014, 41001, 42001})
"""The oapi's in-band errcodes for a missing, invalid or expired access token."""
_NOT_A_NUMBER = -1
_ERRCODE_TEXT = re.compile(r"-?[0-9]{1,12}")
"""An errcode given as text: ASCII digits, one optional minus sign."""
"""The errcode of an answer whose errcode is there but is not a number: still a refusal."""


@dataclass(frozen=True, slots=True)
class Answer:
    """DingTalk's answer: its HTTP status and JSON object (``None`` when the body is not one,
    ``problem`` saying why)."""

    status: int
    document: dict[str, Any] | None
    problem: str = ""

    @property
    def fields(self) -> dict[str, Any]:
        """The JSON object, or {} when there is none."""
        return self.document if self.document is not None else {}


class TokenSource(Protocol):
    """The app's cached access token (``AccessTokens``)."""

    async def access_token(self) -> str:
        """A valid token."""
        ...

    def forget(self) -> None:
        """Drop the cached token."""


class TokenRefused(ReplyError):
    """DingTalk refused the access token (HTTP 401, or an oapi token errcode)."""


async def exchange(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    token: str | None = None,
    **request: Any,
) -> Answer:
    """Send one request and read its answer; ``ReplyError`` only for a network error (its type
    named, never the URL, which may hold the token)."""
    if token is not None:
        request["headers"] = {**request.get("headers", {}), TOKEN_HEADER: token}
    try:
        async with http.request(method, url, **request) as response:
            raw, complete = await read_upto(response, MAX_ANSWER_BYTES)
            status = response.status
    except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
        raise ReplyError(f"{what} unreachable: {type(exc).__name__}", retryable=True) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        # Sent, but no answer: it may have arrived.
        raise ReplyError(
            f"{what} did not answer: {type(exc).__name__}", retryable=True, maybe_delivered=True
        ) from None
    if not complete:
        return Answer(status, None, f"over {MAX_ANSWER_BYTES} bytes")
    return Answer(status, *_parse(raw))


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return {}, ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    return value, ""


def scalar(value: object, limit: int = 200) -> str:
    """A field DingTalk sent as a string or number, as text; "" for anything else (a nested
    value is never turned into text: it may nest deep enough to break ``repr``)."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bool | int | float):
        return str(value)[:limit]
    return ""


def errcode(document: dict[str, Any]) -> int:
    """DingTalk's in-band ``errcode``: 0 when absent, -1 when it is not a number."""
    value = document.get("errcode", 0)
    if isinstance(value, bool):
        return _NOT_A_NUMBER
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    if _ERRCODE_TEXT.fullmatch(text):
        return int(text)
    return _NOT_A_NUMBER


def token_refused(answer: Answer) -> bool:
    """True when DingTalk refused the access token."""
    return answer.status == 401 or errcode(answer.fields) in TOKEN_ERRCODES


async def with_token(tokens: TokenSource, call: Callable[[str], Awaitable[T]]) -> T:
    """``call`` with the app's access token; when it raises ``TokenRefused`` the token is dropped
    from the shared cache and ``call`` made once more with a new one."""
    try:
        return await call(await tokens.access_token())
    except TokenRefused:
        tokens.forget()
    try:
        return await call(await tokens.access_token())
    except TokenRefused:
        tokens.forget()
        raise


def redact(text: str, secret: str, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs folded to one space), ``secret`` cut out even where
    a line break split it, at most ``limit`` characters."""
    folded = " ".join(text.split())
    if secret:
        folded = re.sub(r"\s?".join(map(re.escape, secret)), "…", folded)
    return folded[:limit]
