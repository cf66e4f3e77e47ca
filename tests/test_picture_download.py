"""Downloading a user's picture from DingTalk's file API (the simulator's), as the bot does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from imgbot.dingtalk.pictures import PictureDownloader
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import PictureError
from imgbot.observe import NoObserver
from imgbot.simulator import DingTalkSimulator
from tests.images import photo_png

pytestmark = pytest.mark.usefixtures("no_retry_waits")


@asynccontextmanager
async def downloader_for(
    openapi: str,
    *,
    max_bytes: int = 20 * 1024 * 1024,
    secret: str = "sim-client-secret",  # noqa: S107
) -> AsyncIterator[PictureDownloader]:
    """A downloader with the simulator's credentials and the process's token cache."""
    tokens = AccessTokens(
        openapi_endpoint=openapi, client_id="sim-client-id", client_secret=secret, timeout=5
    )
    downloader = PictureDownloader(
        openapi_endpoint=openapi,
        robot_code="sim-robot",
        tokens=tokens,
        max_bytes=max_bytes,
        timeout=5,
        attempts=3,
        observer=NoObserver(),
    )
    try:
        yield downloader
    finally:
        await downloader.aclose()
        await tokens.aclose()


@pytest.fixture
async def connected(simulator: DingTalkSimulator) -> AsyncIterator[DingTalkSimulator]:
    """The simulator with a bot-like websocket open, so it accepts messages to send."""
    from imgbot.bot import DingTalkStream
    from imgbot.jobs.task_tracker import TaskTracker

    stream = DingTalkStream(
        client_id="sim-client-id",
        client_secret="sim-client-secret",
        openapi_endpoint=simulator.base_url,
        on_request=lambda _request: None,
        tracker=TaskTracker(),
        observer=NoObserver(),
    )
    import asyncio

    task = asyncio.create_task(stream.run())
    await simulator.wait_connected(timeout=15)
    yield simulator
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_download_gets_the_bytes_without_content_type(connected: DingTalkSimulator) -> None:
    """The picture's exact bytes come back; the temporary URL was fetched with no Content-Type."""
    data = photo_png(64)
    sent = await connected.send_picture(data)
    code = sent["content"]["downloadCode"]  # type: ignore[index]
    async with downloader_for(connected.base_url) as downloader:
        assert await downloader.fetch(code) == data
    [call] = connected.files.calls
    assert call.status == 200 and call.body == {"downloadCode": code, "robotCode": "sim-robot"}
    [get] = connected.files.gets
    assert get.status == 200 and "Content-Type" not in get.headers


async def test_expired_code_is_expired(connected: DingTalkSimulator) -> None:
    """A download code DingTalk no longer knows is a PictureError "expired", asked once."""
    sent = await connected.send_picture(photo_png(32))
    code = str(sent["content"]["downloadCode"])  # type: ignore[index]
    connected.expire_picture(code)
    async with downloader_for(connected.base_url) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch(code)
    assert caught.value.reason == "expired"
    assert [c.status for c in connected.files.calls] == [400]


async def test_picture_download_code_gets_500_and_unavailable(
    connected: DingTalkSimulator,
) -> None:
    """Sending pictureDownloadCode gets HTTP 500 (retried, then) a PictureError "unavailable"."""
    sent = await connected.send_picture(photo_png(32))
    code = str(sent["content"]["pictureDownloadCode"])  # type: ignore[index]
    async with downloader_for(connected.base_url) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch(code)
    assert caught.value.reason == "unavailable"
    assert [c.status for c in connected.files.calls] == [500, 500, 500]


async def test_too_large_is_refused_while_streaming(connected: DingTalkSimulator) -> None:
    """A picture over MAX_IMAGE_BYTES is a PictureError "too_large"."""
    sent = await connected.send_picture(photo_png(256))
    code = str(sent["content"]["downloadCode"])  # type: ignore[index]
    async with downloader_for(connected.base_url, max_bytes=2048) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch(code)
    assert caught.value.reason == "too_large"


async def test_zero_bytes_is_empty(connected: DingTalkSimulator) -> None:
    """A 0-byte picture is a PictureError "empty"."""
    sent = await connected.send_picture(b"")
    code = str(sent["content"]["downloadCode"])  # type: ignore[index]
    async with downloader_for(connected.base_url) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch(code)
    assert caught.value.reason == "empty"


async def test_no_access_token_is_unavailable(connected: DingTalkSimulator) -> None:
    """When DingTalk refuses the access token, the download is "unavailable", not a crash."""
    sent = await connected.send_picture(photo_png(32))
    code = str(sent["content"]["downloadCode"])  # type: ignore[index]
    async with downloader_for(connected.base_url, secret="wrong") as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch(code)
    assert caught.value.reason == "unavailable" and connected.files.calls == []


async def test_missing_code_asks_nothing(connected: DingTalkSimulator) -> None:
    """No download code is a PictureError "missing" and no call to DingTalk."""
    async with downloader_for(connected.base_url) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch("")
    assert caught.value.reason == "missing" and connected.files.calls == []


@pytest.fixture
async def streaming_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A download API whose URL streams a body without Content-Length, endlessly."""
    sent: list[int] = []

    async def token(_request: web.Request) -> web.Response:
        return web.json_response({"accessToken": "t", "expireIn": 7200})

    async def download(request: web.Request) -> web.Response:
        return web.json_response({"downloadUrl": f"http://{request.host}/endless"})

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(10_000):
                await response.write(b"\0" * 65536)
                sent.append(65536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_post("/v1.0/oauth2/accessToken", token)
    app.router.add_post("/v1.0/robot/messageFiles/download", download)
    app.router.add_get("/endless", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", sent
    await runner.cleanup()


async def test_endless_body_stops_at_the_cap(streaming_server: tuple[str, list[Any]]) -> None:
    """A body without Content-Length is read only up to MAX_IMAGE_BYTES, then refused."""
    url, sent = streaming_server
    async with downloader_for(url, max_bytes=1024 * 1024) as downloader:
        with pytest.raises(PictureError) as caught:
            await downloader.fetch("code")
    assert caught.value.reason == "too_large"
    assert sum(sent) < 10_000 * 65536
