"""Uploads a picture to DingTalk's media store and answers its ``media_id``.

``POST {DINGTALK_OAPI_ENDPOINT}/media/upload?access_token=…&type=image`` with the picture as the
multipart field ``media`` (jpg, png, gif or bmp, at most 20 MB) answers
``{"errcode": 0, "media_id": "@…"}``; like every oapi call it reports failures in-band, as an
``errcode``/``errmsg`` in an HTTP 200 body. A ``sampleImageMsg`` whose ``photoURL`` is that id
shows on every client without the phone reaching our storage (DINGTALK_MEDIA_UPLOAD).

The type and size are checked before anything is sent. The access token travels in the query
string, so no message here ever holds the URL, and DingTalk's own ``errmsg`` is shown with the
token cut out. Answers are read, and a refused token renewed once, by the rules of
``dingtalk.answers``; network errors and 5xx answers are retried with the one retry policy.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import aiohttp

from imgbot.dingtalk.answers import (
    TokenRefused,
    errcode,
    exchange,
    redact,
    scalar,
    token_refused,
    with_token,
)
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ReplyError
from imgbot.net import retry
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
UPLOAD_PATH = "/media/upload"
MAX_MEDIA_BYTES = 20 * 1024 * 1024
"""DingTalk's limit for an image in its media store."""
MEDIA_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp"}
"""The image types the media store takes, and the file name extension each is sent with."""


class MediaUploader:
    """Uploads previews to DingTalk's media store; one aiohttp session shared by all uploads."""

    def __init__(
        self,
        *,
        oapi_endpoint: str,
        tokens: AccessTokens,
        timeout: float,
        attempts: int,
        observer: Observer,
    ) -> None:
        self._url = oapi_endpoint.rstrip("/") + UPLOAD_PATH
        self._tokens = tokens
        self._policy = retry.RetryPolicy.per_attempt(timeout, attempts)
        self._http = LazySession(timeout=aiohttp.ClientTimeout(total=timeout), cookies=False)
        self._observer = observer

    def __repr__(self) -> str:
        return f"MediaUploader(url={self._url!r})"

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._http.aclose()

    async def upload_image(self, data: bytes, content_type: str) -> str:
        """The ``media_id`` of ``data`` stored as an image; ``ReplyError`` when it cannot be.

        A type other than jpg/png/gif/bmp, an empty picture or one over 20 MB is refused here,
        before anything is sent.
        """
        ext = MEDIA_EXTENSIONS.get(content_type)
        if ext is None:
            raise ReplyError(f"media upload takes jpg, png, gif or bmp, not {content_type[:40]}")
        if not 0 < len(data) <= MAX_MEDIA_BYTES:
            raise ReplyError(f"media upload takes 1 to {MAX_MEDIA_BYTES} bytes, not {len(data)}")
        media_id: str = await retry.call(
            lambda: with_token(
                self._tokens, lambda token: self._upload(data, content_type, ext, token)
            ),
            policy=self._policy,
            retry_on=retry.retryable,
            what="media upload",
            observer=self._observer,
        )
        log.info("uploaded a picture of %d bytes to the media store", len(data))
        return media_id

    async def _upload(self, data: bytes, content_type: str, ext: str, token: str) -> str:
        form = aiohttp.FormData()
        # A file object: aiohttp streams it rather than holding up the loop with a large body.
        media = io.BytesIO(data)
        form.add_field("media", media, filename=f"preview.{ext}", content_type=content_type)
        params = {"access_token": token, "type": "image"}
        # The URL holds the token: ``exchange`` names an error's type only.
        answer = await exchange(
            self._http(), "POST", self._url, params=params, data=form, what="media upload"
        )
        if token_refused(answer):
            raise TokenRefused(
                f"media upload refused the access token: errcode {errcode(answer.fields)}",
                errcode=errcode(answer.fields),
            )
        if answer.status >= 400:
            raise ReplyError(
                f"media upload answered HTTP {answer.status}", retryable=answer.status >= 500
            )
        if answer.document is None:
            raise ReplyError(f"media upload answered {answer.problem}", retryable=True)
        return _media_id(answer.document, token)


def _media_id(answer: dict[str, Any], token: str) -> str:
    """The media id in DingTalk's answer, or its in-band refusal as a ``ReplyError``."""
    code = errcode(answer)
    if code != 0:
        errmsg = redact(scalar(answer.get("errmsg"), 1000), token)
        raise ReplyError(f"media upload refused: errcode {code} {errmsg}".rstrip(), errcode=code)
    media_id = (
        scalar(answer.get("media_id"), 501) if isinstance(answer.get("media_id"), str) else ""
    )
    readable = media_id.isascii() and media_id.isprintable()
    if not readable or not media_id.strip() or len(media_id) > 500:
        raise ReplyError("media upload answered no media_id")
    if redact(media_id, token, 500) != media_id:
        raise ReplyError("media upload answered a media_id holding the access token")
    return media_id
