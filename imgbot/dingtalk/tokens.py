"""The robot's access token: fetched from DingTalk, cached, and shared by every caller of its APIs.

One ``AccessTokens`` per process serves the reply sender, the picture downloader and any other
client of DingTalk's OpenAPI, so the process holds one token (they live 7,200 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from imgbot.dingtalk.answers import exchange, scalar
from imgbot.errors import ReplyError
from imgbot.net.http_session import LazySession

TOKEN_PATH = "/v1.0/oauth2/accessToken"  # noqa: S105 (a URL path, not a secret)
_RENEW_EARLY_SECONDS = 300.0
"""A cached token is replaced this long before DingTalk says it expires."""


class AccessTokens:
    """The app's access token, cached until shortly before it expires."""

    def __init__(
        self,
        *,
        openapi_endpoint: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = openapi_endpoint.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = LazySession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AccessTokens(url={self._url!r}, client_id={self._client_id!r})"

    async def access_token(self) -> str:
        """A valid token: the cached one, or a new one from DingTalk (``ReplyError`` if not)."""
        async with self._lock:
            if self._token and self._token[1] > self._clock():
                return self._token[0]
            answer = await self._ask()
            token = scalar(answer.get("accessToken"), 1000)
            if not token:
                raise ReplyError("DingTalk returned no access token")
            try:
                lifetime = float(scalar(answer.get("expireIn", 7200)))
            except ValueError:
                lifetime = 7200.0
            self._token = (token, self._clock() + max(60.0, lifetime - _RENEW_EARLY_SECONDS))
            return token

    def forget(self) -> None:
        """Drop the cached token (DingTalk refused it); the next call fetches another."""
        self._token = None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def _ask(self) -> dict[str, object]:
        body = {"appKey": self._client_id, "appSecret": self._client_secret}
        try:
            answer = await exchange(self._http(), "POST", self._url, json=body, what="token call")
        except ReplyError as exc:
            raise ReplyError(f"access {exc}", retryable=True) from None
        if answer.status >= 400:
            raise ReplyError(
                f"access token call answered HTTP {answer.status}", retryable=answer.status >= 500
            )
        if answer.document is None:
            raise ReplyError(f"access token call answered {answer.problem}", retryable=True)
        return answer.document
