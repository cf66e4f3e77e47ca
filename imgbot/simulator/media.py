"""The simulated media store: DingTalk's oapi ``/media/upload``, and the pictures it keeps.

As DingTalk's older API does: ``POST /media/upload?access_token=…&type=image`` with the multipart
field ``media`` answers ``{"errcode": 0, "errmsg": "ok", "media_id": "@…", "type": "image"}``;
every refusal is in-band, an ``errcode`` and ``errmsg`` in an HTTP 200 body (a bad token, a type
other than ``image``, a picture that is not jpg/png/gif/bmp or is over 20 MB, and, when
``refuse_uploads`` is set, the quota refusal). The server answers it on its own origin, apart from
the new-style APIs, as oapi.dingtalk.com is apart from api.dingtalk.com. The chat page shows an
uploaded picture at ``models.media_path(media_id)``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from imgbot.simulator.files import sniff_image_type
from imgbot.simulator.models import MEDIA_PATH, error_body, new_id

log = logging.getLogger(__name__)
MAX_MEDIA_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 128 * 1024 * 1024
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/bmp"})


@dataclass(frozen=True)
class MediaUpload:
    """One call of the upload API as the bot made it: its token, the media's size, the answer."""

    access_token: str
    size: int
    errcode: int
    media_id: str


class MediaApi:
    """Answers the upload API and serves the pictures it kept."""

    def __init__(
        self,
        token_valid: Callable[[str], bool],
        *,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self.refuse_uploads = False
        self.uploads: list[MediaUpload] = []
        self.max_total_bytes = max_total_bytes
        self._token_valid = token_valid
        self._media: OrderedDict[str, bytes] = OrderedDict()

    def oapi_routes(self) -> list[web.RouteDef]:
        """The upload API, served on the oapi origin."""
        return [web.post("/media/upload", self.upload)]

    def routes(self) -> list[web.RouteDef]:
        """The kept pictures, served beside the chat page."""
        return [web.get(MEDIA_PATH + "{media_id}", self.picture)]

    def media(self, media_id: str) -> bytes | None:
        """The picture kept under ``media_id``, if any."""
        return self._media.get(media_id)

    async def upload(self, request: web.Request) -> web.Response:
        """`POST /media/upload?access_token=…&type=image`, multipart field `media`."""
        token = request.query.get("access_token", "")
        errcode, errmsg, data = await self._check(request, token)
        media_id = ""
        if errcode == 0:
            media_id = "@lALP" + new_id()
            self._keep(media_id, data)
        self.uploads.append(MediaUpload(token, len(data), errcode, media_id))
        log.info("media upload of %d bytes answered errcode %d", len(data), errcode)
        if errcode:
            return web.json_response({"errcode": errcode, "errmsg": errmsg})
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "media_id": media_id, "type": "image"}
        )

    async def _check(self, request: web.Request, token: str) -> tuple[int, str, bytes]:
        """The errcode (0 for none) and errmsg DingTalk would answer, and the media's bytes."""
        refusal = self._refusal(request, token)
        if refusal is not None:
            return (*refusal, b"")
        data = await _media_part(request)
        return (*self._judged(data), data or b"")

    def _refusal(self, request: web.Request, token: str) -> tuple[int, str] | None:
        """Why the call is refused before its body is read: the token or the type."""
        if not token:
            return 41001, "缺少access_token参数"
        if not self._token_valid(token):
            return 40014, "不合法的access_token"
        if request.query.get("type") != "image":
            return 40004, "不合法的媒体文件类型"
        return None

    def _judged(self, data: bytes | None) -> tuple[int, str]:
        """What DingTalk answers for the media's bytes (``None``: no ``media`` field)."""
        if data is None:
            return 41004, "缺少media参数"
        if len(data) > MAX_MEDIA_BYTES:
            return 40006, "不合法的文件大小"
        if sniff_image_type(data) not in _IMAGE_TYPES and not data.startswith(b"BM"):
            return 40005, "不合法的文件类型"
        if self.refuse_uploads:
            # The organisation's API quota is spent (DingTalk's errcode for it).
            return 90020, "当前企业API调用次数已达上限"
        return 0, "ok"

    def _keep(self, media_id: str, data: bytes) -> None:
        self._media[media_id] = data
        while sum(len(one) for one in self._media.values()) > self.max_total_bytes:
            self._media.popitem(last=False)

    async def picture(self, request: web.Request) -> web.Response:
        """`GET /chat/media/{media_id}` (MEDIA_PATH): an uploaded picture, for the chat page."""
        data = self._media.get(request.match_info["media_id"])
        if data is None:
            return web.json_response(error_body("notFound", "媒体文件不存在"), status=404)
        media_type = "image/bmp" if data.startswith(b"BM") else sniff_image_type(data)
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        }
        return web.Response(body=data, content_type=media_type, headers=headers)


async def _media_part(request: web.Request) -> bytes | None:
    """The bytes of the multipart field ``media`` (one byte past the limit at most); None when
    the body is not multipart or has no such field."""
    if not request.content_type.startswith("multipart/"):
        return None
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "media":
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > MAX_MEDIA_BYTES:
                break
        return bytes(data)
    return None
