"""Fetches a user's picture from DingTalk by its download code, capped at MAX_IMAGE_BYTES.

Two steps: ``POST {openapi}/v1.0/robot/messageFiles/download`` with the robot's access token and
``{"downloadCode", "robotCode"}`` answers ``{"downloadUrl"}``, a temporary signed URL; a GET of that
URL, and of no other, gives the bytes. The GET sends no ``Content-Type``: the URL's signature
covers that header, so adding one makes the storage refuse it. The body is streamed and the
download stops as soon as it passes the cap, so a huge file never sits in memory. Network errors
and 5xx answers are retried with the one retry policy; a 4xx on the code means it is unknown or
expired. The first call's answer is read, and a refused token renewed once, by the rules of
``dingtalk.answers``. Every failure is a ``PictureError`` whose ``reason`` the bot turns into one
sentence.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from imgbot.dingtalk.answers import TokenRefused, exchange, scalar, token_refused, with_token
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ImgbotError, PictureError
from imgbot.net import retry
from imgbot.net.capped_body import read_upto
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
DOWNLOAD_PATH = "/v1.0/robot/messageFiles/download"


def _unavailable(message: str) -> PictureError:
    """A failure worth another attempt (network error, HTTP 5xx, a refused token)."""
    return PictureError(message, reason="unavailable", retryable=True)


class PictureDownloader:
    """Downloads pictures sent to the robot; one aiohttp session shared by all downloads."""

    def __init__(
        self,
        *,
        openapi_endpoint: str,
        robot_code: str,
        tokens: AccessTokens,
        max_bytes: int,
        timeout: float,
        attempts: int,
        observer: Observer,
    ) -> None:
        self._openapi = openapi_endpoint.rstrip("/")
        self._robot_code = robot_code
        self._tokens = tokens
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._policy = retry.RetryPolicy.per_attempt(timeout, attempts)
        self._observer = observer
        # No cookies: the temporary URL's host must not learn anything from an earlier call.
        self._http = LazySession(timeout=self._timeout, cookies=False)

    def __repr__(self) -> str:
        return f"PictureDownloader(openapi={self._openapi!r}, robot_code={self._robot_code!r})"

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def fetch(self, download_code: str, robot_code: str = "") -> bytes:
        """The picture's bytes, at most MAX_IMAGE_BYTES; raises ``PictureError``."""
        if not download_code:
            raise PictureError("the message has no downloadCode", reason="missing")
        url: str = await self._call(lambda: self._download_url(download_code, robot_code))
        data: bytes = await self._call(lambda: self._get(url))
        if not data:
            raise PictureError("the picture is 0 bytes", reason="empty")
        log.info("downloaded a picture of %d bytes", len(data))
        return data

    async def _call(self, once: Any) -> Any:
        return await retry.call(
            once,
            policy=self._policy,
            retry_on=retry.retryable,
            what="picture download",
            observer=self._observer,
        )

    async def _download_url(self, download_code: str, robot_code: str) -> str:
        try:
            return await with_token(
                self._tokens, lambda token: self._ask_url(download_code, robot_code, token)
            )
        except PictureError:
            raise
        except ImgbotError as exc:  # no token, a refused one, no answer: all "unavailable"
            raise _unavailable(str(exc)) from None

    async def _ask_url(self, download_code: str, robot_code: str, token: str) -> str:
        body = {"downloadCode": download_code, "robotCode": robot_code or self._robot_code}
        answer = await exchange(
            self._http(),
            "POST",
            self._openapi + DOWNLOAD_PATH,
            json=body,
            token=token,
            what="download API",
        )
        status = answer.status
        if status >= 500:
            raise _unavailable(f"download API answered HTTP {status}")
        if token_refused(answer):
            raise TokenRefused("download API refused the access token", errcode=status)
        if status >= 400:
            code = scalar(answer.fields.get("code"), 80)
            # 400/404 name the code itself (unknown or expired); 403 is a missing permission.
            reason = "expired" if status in (400, 404) else "unavailable"
            log.warning("download API answered HTTP %d %s", status, code)
            raise PictureError(f"download API answered HTTP {status} {code}", reason=reason)
        url = answer.fields.get("downloadUrl")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise PictureError("download API answered no downloadUrl", reason="unavailable")
        return url

    async def _get(self, url: str) -> bytes:
        # skip_auto_headers: aiohttp adds no Content-Type to a body-less GET, but be explicit.
        try:
            async with self._http().get(
                url, allow_redirects=False, skip_auto_headers=("Content-Type",)
            ) as response:
                if response.status >= 500:
                    raise _unavailable(f"picture URL answered HTTP {response.status}")
                if response.status != 200:
                    raise PictureError(
                        f"picture URL answered HTTP {response.status}", reason="expired"
                    )
                if (response.content_length or 0) > self._max_bytes:
                    raise _too_large(self._max_bytes)
                data, complete = await read_upto(response, self._max_bytes)
                if not complete:
                    raise _too_large(self._max_bytes)
                return data
        except ImgbotError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The host is logged, never the URL: its query string is a signature.
            host = urlsplit(url).hostname or "?"
            raise _unavailable(f"picture URL on {host} failed: {type(exc).__name__}") from None


def _too_large(limit: int) -> PictureError:
    return PictureError(f"the picture is over MAX_IMAGE_BYTES ({limit})", reason="too_large")
