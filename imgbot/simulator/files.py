"""The simulated file download API: pictures users sent, kept in memory, fetched by download code.

As DingTalk does: ``POST /v1.0/robot/messageFiles/download`` (access token and robotCode checked)
trades a message's ``downloadCode`` for a temporary ``downloadUrl``; a ``pictureDownloadCode``
gets HTTP 500 (what connectors report from DingTalk); an unknown or expired code gets DingTalk's
error body with HTTP 400. The temporary URL is signed like an OSS URL, so its GET refuses a
``Content-Type`` header (403 SignatureDoesNotMatch) and stops working after ``URL_TTL_S``.
Pictures are kept in memory up to ``max_total_bytes``; the oldest are dropped beyond it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from imgbot.simulator.models import (
    JSONDict,
    error_body,
    is_media_id,
    media_path,
    new_id,
    parse_json_object,
)

log = logging.getLogger(__name__)
URL_TTL_S = 300
DEFAULT_MAX_PICTURE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class StoredPicture:
    """One picture a simulated user sent: its bytes and the two codes DingTalk gives for it."""

    data: bytes
    download_code: str
    picture_download_code: str


@dataclass(frozen=True)
class DownloadCall:
    """One call of the download API as the bot made it."""

    body: JSONDict | None
    status: int


@dataclass(frozen=True)
class FileGet:
    """One GET of a temporary download URL: the headers the bot sent, the status answered."""

    headers: dict[str, str]
    status: int


class FileApi:
    """Keeps pictures, answers the download API and serves the temporary URLs."""

    def __init__(
        self,
        robot_code: str,
        token_valid: Callable[[str], bool],
        base_url: Callable[[], str],
        *,
        max_picture_bytes: int = DEFAULT_MAX_PICTURE_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self.robot_code = robot_code
        self.max_picture_bytes = max_picture_bytes
        self.max_total_bytes = max_total_bytes
        self.calls: list[DownloadCall] = []
        self.gets: list[FileGet] = []
        self._token_valid = token_valid
        self._base_url = base_url
        self._pictures: OrderedDict[str, StoredPicture] = OrderedDict()
        self._remote: dict[str, str] = {}  # download code -> URL of a picture the bot sent
        self._urls: dict[str, tuple[bytes, float]] = {}

    def routes(self) -> list[web.RouteDef]:
        """The download API's and the temporary URLs' routes."""
        return [
            web.post("/v1.0/robot/messageFiles/download", self.download),
            web.get("/files/{token}", self.file),
        ]

    def add(self, data: bytes) -> StoredPicture:
        """Keep ``data`` as a picture a user sent; return it with its codes."""
        if len(data) > self.max_picture_bytes:
            raise ValueError(f"picture over the simulator's cap of {self.max_picture_bytes} bytes")
        picture = StoredPicture(data, new_id("dc-"), new_id("pdc-"))
        self._pictures[picture.download_code] = picture
        while sum(len(p.data) for p in self._pictures.values()) > self.max_total_bytes:
            self._pictures.popitem(last=False)
        return picture

    def add_remote(self, url: str) -> str:
        """A download code for a picture the bot itself sent (a native image): the API answers
        with its URL, as DingTalk answers with one of its own storage (for a media id, where the
        simulator serves that media)."""
        if is_media_id(url):
            url = self._base_url() + media_path(url)
        code = new_id("dc-")
        self._remote[code] = url
        return code

    def picture(self, download_code: str) -> StoredPicture | None:
        """The kept picture of ``download_code``, if any."""
        return self._pictures.get(download_code)

    def expire(self, download_code: str) -> None:
        """Make ``download_code`` unknown, as DingTalk does after a while."""
        self._pictures.pop(download_code, None)
        self._remote.pop(download_code, None)

    async def download(self, request: web.Request) -> web.Response:
        """`POST /v1.0/robot/messageFiles/download` `{downloadCode, robotCode}`: a temporary
        `{downloadUrl}`."""
        body = parse_json_object(await request.read())
        response = self._answer(request, body)
        self.calls.append(DownloadCall(body, response.status))
        return response

    def _refusal(self, request: web.Request, body: JSONDict | None) -> web.Response | None:
        if not self._token_valid(request.headers.get("x-acs-dingtalk-access-token", "")):
            return _error(401, "InvalidAuthentication", "不合法的access_token")
        if body is None:
            return _error(400, "invalidParameter.param.invalid", "参数不合法")
        if body.get("robotCode") != self.robot_code:
            return _error(400, "invalidParameter.robotCode.invalid", "无效的robotCode")
        return None

    def _answer(self, request: web.Request, body: JSONDict | None) -> web.Response:
        refusal = self._refusal(request, body)
        if refusal is not None or body is None:
            return refusal or _error(400, "invalidParameter.param.invalid", "参数不合法")
        code = body.get("downloadCode")
        if isinstance(code, str) and code.startswith("pdc-"):
            # Connectors report HTTP 500 when the pictureDownloadCode is sent as downloadCode.
            return _error(500, "unknownError", "系统繁忙")
        if isinstance(code, str) and code in self._remote:
            return web.json_response({"downloadUrl": self._remote[code]})
        picture = self._pictures.get(code) if isinstance(code, str) else None
        if picture is None:
            return _error(400, "invalidParameter.downloadCode.invalid", "downloadCode无效或已过期")
        token = new_id()
        self._urls[token] = (picture.data, time.monotonic() + URL_TTL_S)
        url = f"{self._base_url()}/files/{token}?Expires={int(time.time()) + URL_TTL_S}"
        return web.json_response({"downloadUrl": url + f"&OSSAccessKeyId=sim&Signature={token}"})

    async def file(self, request: web.Request) -> web.Response:
        """`GET /files/{token}`: the picture, if the URL is valid and no Content-Type came."""
        response = self._file(request)
        self.gets.append(FileGet(dict(request.headers), response.status))
        return response

    def _file(self, request: web.Request) -> web.Response:
        if "Content-Type" in request.headers:
            # The signature covers Content-Type (empty when signed): OSS refuses any other value.
            return web.Response(status=403, text="SignatureDoesNotMatch", content_type="text/xml")
        entry = self._urls.get(request.match_info["token"])
        if entry is None or time.monotonic() > entry[1]:
            return web.Response(status=403, text="AccessDenied", content_type="text/xml")
        return web.Response(body=entry[0], content_type="application/octet-stream")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def sniff_image_type(data: bytes) -> str:
    """An image media type from the first bytes; application/octet-stream for anything else."""
    signatures = {
        b"\x89PNG\r\n\x1a\n": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
    }
    for magic, media_type in signatures.items():
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
