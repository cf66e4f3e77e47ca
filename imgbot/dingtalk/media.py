"""Uploads a picture to DingTalk's media store and answers its ``media_id``.

``POST {DINGTALK_OAPI_ENDPOINT}/media/upload?access_token=…&type=image`` with the picture as the
multipart field ``media`` (jpg, png, gif or bmp, at most 20 MB) answers
``{"errcode": 0, "media_id": "@…"}``; like every oapi call it reports failures in-band, as an
``errcode``/``errmsg`` in an HTTP 200 body. A ``sampleImageMsg`` whose ``photoURL`` is that id
shows on every client without the phone reaching our storage (DINGTALK_MEDIA_UPLOAD).

The type and size are checked before anything is sent. The access token travels in the query
string, so no message here ever holds the URL, and DingTalk's own ``errmsg`` is shown with the
token cut out. A refused token is dropped from the shared cache and the upload tried once more
with a new one; network errors and 5xx answers are retried with the one retry policy.
"""

from __future__ import annotations

import io
import json
import logging

import aiohttp

from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ImgbotError, ReplyError
from imgbot.net import retry
from imgbot.net.http_session import LazySession
from imgbot.observe import Observer

log = logging.getLogger(__name__)
UPLOAD_PATH = "/media/upload"
MAX_MEDIA_BYTES = 20 * 1024 * 1024
"""DingTalk's limit for an image in its media store."""
MEDIA_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp"}
"""The image types the media store takes, and the file name extension each is sent with."""
_TOKEN_ERRCODES = frozenset({40001, 40014, 41001, 42001})
"""In-band errcodes for a missing, invalid or expired access token."""


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
        self._policy = retry.RetryPolicy(attempts=attempts, timeout=timeout * attempts + 5)
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
            lambda: self._upload(data, content_type, ext),
            policy=self._policy,
            retry_on=retry.retryable,
            what="media upload",
            observer=self._observer,
        )
        log.info("uploaded a picture of %d bytes to the media store", len(data))
        return media_id

    async def _upload(self, data: bytes, content_type: str, ext: str) -> str:
        try:
            token = await self._tokens.access_token()
        except ImgbotError as exc:
            raise ReplyError(f"media upload has no access token: {exc}", retryable=True) from None
        form = aiohttp.FormData()
        # A file object: aiohttp streams it rather than holding up the loop with a large body.
        media = io.BytesIO(data)
        form.add_field("media", media, filename=f"preview.{ext}", content_type=content_type)
        params = {"access_token": token, "type": "image"}
        try:
            async with self._http().post(self._url, params=params, data=form) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The type only: an aiohttp error may name the URL, and the URL holds the token.
            raise ReplyError(
                f"media upload did not answer: {type(exc).__name__}", retryable=True
            ) from None
        if status >= 400:
            raise ReplyError(f"media upload answered HTTP {status}", retryable=status >= 500)
        try:
            answer = json.loads(text)
        except ValueError:
            raise ReplyError("media upload answered non-JSON", retryable=True) from None
        if not isinstance(answer, dict):
            raise ReplyError("media upload answered no JSON object", retryable=True)
        return self._media_id(answer, token)

    def _media_id(self, answer: dict[str, object], token: str) -> str:
        """The media id in DingTalk's answer, or its in-band refusal as a ``ReplyError``."""
        errcode = _int(answer.get("errcode", 0))
        if errcode != 0:
            errmsg = " ".join(str(answer.get("errmsg", "")).replace(token, "…").split())[:200]
            refused_token = errcode in _TOKEN_ERRCODES
            if refused_token:
                self._tokens.forget()
            raise ReplyError(
                f"media upload refused: errcode {errcode} {errmsg}".rstrip(),
                errcode=errcode,
                retryable=refused_token,
            )
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id.strip() or len(media_id) > 500:
            raise ReplyError("media upload answered no media_id")
        return media_id


def _int(value: object) -> int:
    """An errcode DingTalk sent as a number or a string; -1 for anything else."""
    try:
        return int(str(value))
    except ValueError:
        return -1
