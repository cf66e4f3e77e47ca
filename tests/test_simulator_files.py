"""The simulator's pictures: the download API's rules, temporary URLs, the chat page's uploads."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dingtalk_stream
import pytest
from dingtalk_stream import stream as sdk_stream

from imgbot.simulator import DingTalkSimulator
from imgbot.simulator.files import FileApi
from tests.images import photo_png
from tests.test_simulator import RecordingHandler, make_client, post_json, stop_client

DOWNLOAD = "/v1.0/robot/messageFiles/download"


@pytest.fixture
async def bot(
    simulator: DingTalkSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Any, RecordingHandler]]:
    """The SDK's own client connected to the simulator, queueing what it receives."""
    api = f"{simulator.base_url}/v1.0/gateway/connections/open"
    monkeypatch.setattr(dingtalk_stream.DingTalkStreamClient, "OPEN_CONNECTION_API", api)
    monkeypatch.setattr(sdk_stream, "DINGTALK_OPENAPI_ENDPOINT", simulator.base_url)
    client = make_client()
    handler = RecordingHandler()
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, handler)
    task = asyncio.create_task(client.start())
    await simulator.wait_connected()
    yield client, handler
    await stop_client(task)


async def token(http: aiohttp.ClientSession, simulator: DingTalkSimulator) -> dict[str, str]:
    """The robot access-token header for the simulator."""
    credentials = {"appKey": simulator.client_id, "appSecret": simulator.client_secret}
    _, answer = await post_json(http, f"{simulator.base_url}/v1.0/oauth2/accessToken", credentials)
    return {"x-acs-dingtalk-access-token": answer["accessToken"]}


async def test_download_api_rules(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """The download API checks the token and robotCode, refuses pictureDownloadCode with 500 and
    an unknown code with DingTalk's error body, and answers a downloadUrl for downloadCode."""
    _, handler = bot
    data = photo_png(32)
    sent = await simulator.send_picture(data)
    parsed = await handler.next_message()
    content: Any = sent["content"]
    assert parsed.image_content.download_code == content["downloadCode"]
    url = simulator.base_url + DOWNLOAD
    good = {"downloadCode": content["downloadCode"], "robotCode": simulator.robot_code}
    status, _ = await post_json(http, url, good, {"x-acs-dingtalk-access-token": "wrong"})
    assert status == 401
    auth = await token(http, simulator)
    status, _ = await post_json(http, url, {**good, "robotCode": "other"}, auth)
    assert status == 400
    status, _ = await post_json(
        http, url, {**good, "downloadCode": content["pictureDownloadCode"]}, auth
    )
    assert status == 500
    status, answer = await post_json(http, url, {**good, "downloadCode": "unknown"}, auth)
    assert status == 400 and {"code", "message", "requestid"} <= answer.keys()
    status, answer = await post_json(http, url, good, auth)
    assert status == 200
    async with http.get(answer["downloadUrl"], headers={"Content-Type": "image/png"}) as refused:
        assert refused.status == 403
    async with http.get(answer["downloadUrl"]) as fetched:
        assert fetched.status == 200 and await fetched.read() == data


async def test_rich_text_and_quote_reach_the_sdk(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """richText arrives as the SDK's rich text list; a quote keeps isReplyMsg and repliedMsg in
    the text's extensions, as DingTalk's own do."""
    _, handler = bot
    sent = await simulator.send_rich_text(["改成", photo_png(32)])
    rich = await handler.next_message()
    items = rich.rich_text_content.rich_text_list
    assert items[0] == {"text": "改成"} and items[1]["downloadCode"]
    await simulator.send_quote("换背景", simulator.quote_of(sent))
    quote = await handler.next_message()
    assert quote.text.content == "换背景"
    assert quote.text.extensions["isReplyMsg"] is True
    assert quote.text.extensions["repliedMsg"]["msgType"] == "richText"


async def test_chat_page_sends_pictures_and_quotes(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """The chat page sends a picture alone, picture with text (richText), and a quote of it; the
    log shows the picture, served as an image with nosniff."""
    _, handler = bot
    data = photo_png(32)
    encoded = base64.b64encode(data).decode()
    send = f"{simulator.base_url}/chat/send"
    assert (await post_json(http, send, {"text": "", "picture": encoded}))[0] == 200
    assert (await handler.next_message()).message_type == "picture"
    assert (await post_json(http, send, {"text": "换背景", "picture": encoded}))[0] == 200
    assert (await handler.next_message()).message_type == "richText"
    async with http.get(f"{simulator.base_url}/chat/messages") as answer:
        entries = await answer.json()
    status, _ = await post_json(http, send, {"text": "再改", "quote": entries[1]["id"]})
    assert status == 200
    quoted = await handler.next_message()
    assert quoted.text.extensions["repliedMsg"]["msgType"] == "richText"
    async with http.get(simulator.base_url + entries[0]["picture"]) as shown:
        assert shown.headers["Content-Type"] == "image/png"
        assert shown.headers["X-Content-Type-Options"] == "nosniff"
        assert await shown.read() == data
    refused = await post_json(http, send, {"text": "x", "picture": "not base64!"})
    assert refused[0] == 400


async def test_html_upload_is_not_served_as_html(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """A "picture" that is HTML is served back as opaque bytes, never as a page."""
    html = b"<html><script>alert(1)</script></html>"
    body = {"text": "", "picture": base64.b64encode(html).decode()}
    assert (await post_json(http, f"{simulator.base_url}/chat/send", body))[0] == 200
    async with http.get(f"{simulator.base_url}/chat/messages") as answer:
        entry = (await answer.json())[-1]
    async with http.get(simulator.base_url + entry["picture"]) as shown:
        assert shown.headers["Content-Type"] == "application/octet-stream"


def test_kept_pictures_are_capped() -> None:
    """Beyond the total cap the oldest pictures are dropped; one over the per-picture cap is
    refused."""
    files = FileApi(
        "robot", lambda _t: True, lambda: "http://x", max_picture_bytes=100, max_total_bytes=250
    )
    first = files.add(b"a" * 100)
    files.add(b"b" * 100)
    files.add(b"c" * 100)
    assert files.picture(first.download_code) is None
    with pytest.raises(ValueError, match="cap"):
        files.add(b"d" * 101)
