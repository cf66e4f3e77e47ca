"""The DingTalk simulator, driven by the real dingtalk-stream SDK client and plain HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dingtalk_stream
import pytest
import pytest_asyncio
from dingtalk_stream import stream as sdk_stream

from imgbot.simulator import DingTalkSimulator, Reply

SECRET = "sim-client-secret"
CREDENTIALS = {"clientId": "sim-client-id", "clientSecret": SECRET}


class RecordingHandler(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]
    """A chatbot handler that queues every message it gets and ACKs it at once."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: asyncio.Queue[dingtalk_stream.ChatbotMessage] = asyncio.Queue()

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        self.messages.put_nowait(dingtalk_stream.ChatbotMessage.from_dict(callback.data))
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"

    async def next_message(self) -> dingtalk_stream.ChatbotMessage:
        return await asyncio.wait_for(self.messages.get(), 10)


@pytest.fixture
def sdk_endpoint(simulator: DingTalkSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK computes both from DINGTALK_OPENAPI_ENDPOINT at import time, and open_connection
    # reads the class attribute by name, so a subclass or instance attribute would be ignored.
    api = f"{simulator.base_url}/v1.0/gateway/connections/open"
    monkeypatch.setattr(dingtalk_stream.DingTalkStreamClient, "OPEN_CONNECTION_API", api)
    monkeypatch.setattr(sdk_stream, "DINGTALK_OPENAPI_ENDPOINT", simulator.base_url)


def make_client(secret: str = SECRET) -> dingtalk_stream.DingTalkStreamClient:
    credential = dingtalk_stream.Credential("sim-client-id", secret)
    return dingtalk_stream.DingTalkStreamClient(credential)


async def stop_client(task: asyncio.Task[None]) -> None:
    # start() swallows the first CancelledError and sleeps; the second one ends it.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    current = asyncio.current_task()
    leftovers = [
        t
        for t in asyncio.all_tasks()
        if t is not current and "DingTalkStreamClient" in getattr(t.get_coro(), "__qualname__", "")
    ]
    for leftover in leftovers:
        leftover.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest_asyncio.fixture
async def bot(
    simulator: DingTalkSimulator, sdk_endpoint: None
) -> AsyncIterator[tuple[dingtalk_stream.DingTalkStreamClient, RecordingHandler]]:
    client = make_client()
    handler = RecordingHandler()
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, handler)
    task = asyncio.create_task(client.start())
    await simulator.wait_connected()
    yield client, handler
    await stop_client(task)


async def post_json(
    http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


MARKDOWN = {
    "msgtype": "markdown",
    "markdown": {"title": "图片已生成", "text": "![猫](https://example.com/cat.png)"},
    "at": {"atUserIds": ["user001"]},
}


@pytest.mark.asyncio
async def test_text_message_reaches_handler_and_is_acked(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """A one-to-one text reaches a ChatbotHandler and its 200 ACK is recorded."""
    _, handler = bot
    sent = await simulator.send_text("帮我画一只猫", msg_id="msg-1")
    message = await handler.next_message()
    assert message.text.content == "帮我画一只猫"
    assert message.message_id == "msg-1"
    assert message.conversation_type == "1"
    assert message.sender_staff_id == "user001"
    assert message.session_webhook.startswith(f"{simulator.base_url}/robot/sendBySession?session=")
    assert message.session_webhook_expired_time == sent["sessionWebhookExpiredTime"]
    ack = await simulator.wait_for_ack("msg-1")
    assert ack["code"] == 200
    assert ack["headers"]["contentType"] == "application/json"


@pytest.mark.asyncio
async def test_group_message_carries_dingtalk_quirks(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """A group @-message has a leading space, isInAtList and the group's conversation id."""
    _, handler = bot
    await simulator.send_text("画一座山", group=True, conversation_id="cid-team")
    message = await handler.next_message()
    assert message.text.content == " 画一座山"
    assert message.is_in_at_list is True
    assert message.conversation_type == "2"
    assert message.conversation_id == "cid-team"
    assert message.at_users[0].dingtalk_id == message.chatbot_user_id


@pytest.mark.asyncio
async def test_ping_is_acked_with_its_opaque(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """A SYSTEM ping is acked by the SDK, echoing the opaque value."""
    frame_id = await simulator.send_ping()
    ack = await simulator.wait_for_ack(frame_id)
    assert ack["code"] == 200
    assert "opaque" in json.loads(ack["data"])


@pytest.mark.asyncio
async def test_disconnect_is_acked_and_the_sdk_reconnects(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """After a SYSTEM disconnect the SDK acks, closes and opens a fresh connection."""
    _, handler = bot
    frame_id = await simulator.send_disconnect()
    assert (await simulator.wait_for_ack(frame_id))["code"] == 200
    await simulator.wait_until(lambda: simulator.connections_opened == 2)
    await simulator.wait_connected()
    await simulator.send_text("又来了")
    assert (await handler.next_message()).text.content == "又来了"


@pytest.mark.asyncio
async def test_session_webhook_records_reply(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """A Markdown POST to the session webhook is answered errcode 0 and recorded."""
    _, handler = bot
    await simulator.send_text("画猫", msg_id="msg-cat")
    message = await handler.next_message()
    status, body = await post_json(http, message.session_webhook, MARKDOWN)
    assert (status, body) == (200, {"errcode": 0, "errmsg": "ok"})
    [reply] = await simulator.wait_for_replies(1)
    assert reply == Reply(
        channel="webhook",
        conversation_id="cid-o2o-user001",
        msgtype="markdown",
        title="图片已生成",
        text="![猫](https://example.com/cat.png)",
        at_user_ids=("user001",),
        msg_id="msg-cat",
    )
    assert reply.raw == MARKDOWN


@pytest.mark.asyncio
async def test_sdk_reply_helper_is_accepted(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler]
) -> None:
    """The SDK's own reply_text body is accepted by the simulated webhook."""
    _, handler = bot
    await simulator.send_text("你好")
    message = await handler.next_message()
    answer = await asyncio.to_thread(handler.reply_text, "收到", message)
    assert answer == {"errcode": 0, "errmsg": "ok"}
    [reply] = await simulator.wait_for_replies(1)
    assert (reply.msgtype, reply.text, reply.at_user_ids) == ("text", "收到", ("user001",))


@pytest.mark.asyncio
async def test_webhook_script_injects_faults(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """Scripted answers come out in order: HTTP 500, an in-band errcode, then a hang."""
    _, handler = bot
    await simulator.send_text("画猫")
    url = (await handler.next_message()).session_webhook
    simulator.webhook_script.extend([500, {"errcode": 300001, "errmsg": "系统繁忙"}, ("hang", 0.3)])
    assert (await post_json(http, url, MARKDOWN))[0] == 500
    assert await post_json(http, url, MARKDOWN) == (200, {"errcode": 300001, "errmsg": "系统繁忙"})
    assert simulator.replies == []
    started = asyncio.get_running_loop().time()
    assert await post_json(http, url, MARKDOWN) == (200, {"errcode": 0, "errmsg": "ok"})
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert simulator.webhook_attempts == 3
    assert len(simulator.replies) == 1


@pytest.mark.asyncio
async def test_expired_or_unknown_webhook_is_refused_in_band(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """Expired and unknown session webhooks answer HTTP 200 with errcode 300001."""
    _, handler = bot
    await simulator.send_text("画猫", webhook_ttl_s=0)
    url = (await handler.next_message()).session_webhook
    refused = (200, {"errcode": 300001, "errmsg": "session 不存在"})
    assert await post_json(http, url, MARKDOWN) == refused
    unknown = f"{simulator.base_url}/robot/sendBySession?session=nope"
    assert await post_json(http, unknown, MARKDOWN) == refused
    assert simulator.replies == []
    assert simulator.webhook_attempts == 2


@pytest.mark.asyncio
async def test_invalid_or_oversized_webhook_body_is_refused(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """Malformed, unsupported and over-20,000-byte bodies get non-zero errcodes."""
    _, handler = bot
    await simulator.send_text("画猫")
    url = (await handler.next_message()).session_webhook
    huge = {"msgtype": "text", "text": {"content": "猫" * 7000}}
    assert (await post_json(http, url, huge))[1]["errcode"] == 460101
    for body in ({"msgtype": "image"}, {"msgtype": "markdown", "markdown": {"text": "x"}}):
        assert (await post_json(http, url, body))[1]["errcode"] == 40035
    async with http.post(url, data=b"{not json") as response:
        assert (await response.json())["errcode"] == 40035
    assert simulator.replies == []


@pytest.mark.asyncio
async def test_access_token_and_robot_sends_record_replies(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """The SDK gets a token; batchSend and groupMessages/send record robot replies."""
    client, handler = bot
    await simulator.send_text("画猫", sender_staff_id="staff9", conversation_id="cid-staff9")
    await handler.next_message()
    token = await asyncio.to_thread(client.get_access_token)
    headers = {"x-acs-dingtalk-access-token": token}
    param = json.dumps({"title": "图片已生成", "text": "**好了**"})
    o2o = {"robotCode": "sim-robot", "userIds": ["staff9"], "msgKey": "sampleMarkdown"}
    o2o_url = f"{simulator.base_url}/v1.0/robot/oToMessages/batchSend"
    status, body = await post_json(http, o2o_url, {**o2o, "msgParam": param}, headers)
    assert status == 200
    assert body["processQueryKey"]
    group = {
        "robotCode": "sim-robot",
        "openConversationId": "cid-team",
        "msgKey": "sampleText",
        "msgParam": json.dumps({"content": "好了"}),
    }
    group_url = f"{simulator.base_url}/v1.0/robot/groupMessages/send"
    status, body = await post_json(http, group_url, group, headers)
    assert status == 200
    first, second = await simulator.wait_for_replies(2)
    assert (first.channel, first.conversation_id) == ("robot_o2o", "cid-staff9")
    assert (first.msgtype, first.title, first.text) == ("markdown", "图片已生成", "**好了**")
    assert (second.channel, second.conversation_id) == ("robot_group", "cid-team")
    assert (second.msgtype, second.title, second.text) == ("text", None, "好了")
    wrong_robot = {**group, "robotCode": "other"}
    assert (await post_json(http, group_url, wrong_robot, headers))[0] == 400
    assert (await post_json(http, group_url, group))[0] == 401
    assert len(simulator.replies) == 2


@pytest.mark.asyncio
async def test_wrong_credentials_and_refusals(
    simulator: DingTalkSimulator, sdk_endpoint: None, http: aiohttp.ClientSession
) -> None:
    """Wrong secrets get 401s; refuse_connections makes open-connection answer 503."""
    assert await asyncio.to_thread(make_client("wrong").open_connection) is None
    wrong = {"appKey": "sim-client-id", "appSecret": "x"}
    status, body = await post_json(http, f"{simulator.base_url}/v1.0/oauth2/accessToken", wrong)
    assert (status, body["code"]) == (401, "InvalidAuthentication")
    simulator.refuse_connections = True
    open_api = f"{simulator.base_url}/v1.0/gateway/connections/open"
    assert (await post_json(http, open_api, CREDENTIALS))[0] == 503
    simulator.refuse_connections = False
    assert (await asyncio.to_thread(make_client().open_connection))["ticket"]
    assert simulator.connections_opened == 1
    async with http.get(f"{simulator.base_url}/gateway/connect?ticket=forged") as response:
        assert response.status == 401


@pytest.mark.asyncio
async def test_raw_frames_and_garbage_from_the_client(
    simulator: DingTalkSimulator, http: aiohttp.ClientSession
) -> None:
    """Frames match the wire format, raw frames pass through, and client garbage is ignored."""
    _, opened = await post_json(
        http, f"{simulator.base_url}/v1.0/gateway/connections/open", CREDENTIALS
    )
    async with http.ws_connect(f"{opened['endpoint']}?ticket={opened['ticket']}") as ws:
        await simulator.wait_connected()
        sent = await simulator.send_text("hi")
        frame = json.loads(await ws.receive_str(timeout=5))
        assert frame["specVersion"] == "1.0"
        assert frame["type"] == "CALLBACK"
        assert frame["headers"]["topic"] == "/v1.0/im/bot/messages/get"
        headers = {"appId", "connectionId", "messageId", "time", "contentType", "topic"}
        assert set(frame["headers"]) == headers
        assert json.loads(frame["data"]) == sent
        await simulator.send_frame("{broken")
        assert await ws.receive_str(timeout=5) == "{broken"
        await ws.send_str("not json at all")
        ack = {"code": 200, "headers": {"messageId": frame["headers"]["messageId"]}, "data": "{}"}
        await ws.send_str(json.dumps(ack))
        assert await simulator.wait_for_ack(str(sent["msgId"])) == ack
        await simulator.drop_connections()
        closed = (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert (await ws.receive(timeout=5)).type in closed
    with pytest.raises(ConnectionError):
        await simulator.send_text("nobody home")
    with pytest.raises(TimeoutError):
        await simulator.wait_connected(timeout=0.1)


@pytest.mark.asyncio
async def test_chat_page_relays_to_the_bot(
    simulator: DingTalkSimulator, sdk_endpoint: None, http: aiohttp.ClientSession
) -> None:
    """The chat page is served; /chat/send reaches the bot and the reply joins the log."""
    async with http.get(simulator.chat_url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert 'id="input"' in page
    assert 'id="send"' in page
    assert (await post_json(http, f"{simulator.base_url}/chat/send", {"text": "画猫"}))[0] == 409
    async with http.get(f"{simulator.base_url}/chat/status") as response:
        assert await response.json() == {"connected": False}
    client = make_client()
    handler = RecordingHandler()
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, handler)
    task = asyncio.create_task(client.start())
    try:
        await simulator.wait_connected()
        async with http.get(f"{simulator.base_url}/chat/status") as response:
            assert await response.json() == {"connected": True}
        status, body = await post_json(http, f"{simulator.base_url}/chat/send", {"text": "画猫"})
        assert status == 200
        message = await handler.next_message()
        assert (message.message_id, message.conversation_id) == (body["msgId"], "web-chat")
        assert message.sender_nick == "网页用户"
        await post_json(http, message.session_webhook, MARKDOWN)
        async with http.get(f"{simulator.base_url}/chat/messages") as response:
            log = await response.json()
        assert [(e["from"], e["text"]) for e in log] == [
            ("user", "画猫"),
            ("bot", MARKDOWN["markdown"]["text"]),  # type: ignore[index]
        ]
    finally:
        await stop_client(task)


@pytest.mark.asyncio
async def test_chat_send_refuses_cross_site_posts(
    simulator: DingTalkSimulator, http: aiohttp.ClientSession
) -> None:
    """A form-like text/plain POST or one from another origin never reaches the bot (CSRF)."""
    send = f"{simulator.base_url}/chat/send"
    body = json.dumps({"text": "画猫"})
    async with http.post(send, data=body, headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415
    async with http.post(send, data=body) as response:  # no Content-Type at all
        assert response.status == 415
    for origin in ("http://evil.example", "null", f"http://localhost:{simulator.port + 1}"):
        status, _ = await post_json(http, send, {"text": "画猫"}, {"Origin": origin})
        assert status == 403, origin
    # The page's own request passes the guard: 409 means it reached "no bot connected".
    status, _ = await post_json(http, send, {"text": "画猫"}, {"Origin": simulator.base_url})
    assert status == 409
    assert (await (await http.get(f"{simulator.base_url}/chat/messages")).json()) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/chat/messages", "/chat/status"])
async def test_chat_answers_only_its_own_host(
    simulator: DingTalkSimulator, http: aiohttp.ClientSession, path: str
) -> None:
    """A Host other than the simulator's own (a rebound DNS name) is refused; localhost is fine."""
    url = simulator.base_url + path
    for host in ("evil.example", f"evil.example:{simulator.port}", "127.0.0.1", "127.0.0.1:1"):
        async with http.get(url, headers={"Host": host}) as response:
            assert response.status == 403, host
    for host in (
        f"127.0.0.1:{simulator.port}",
        f"localhost:{simulator.port}",
        f"LOCALHOST:{simulator.port}",
    ):
        async with http.get(url, headers={"Host": host}) as response:
            assert response.status == 200, host


ATTACKER_PAGE = """<!DOCTYPE html><script>
window.attack = async (target) => {
  const text = JSON.stringify({ text: "csrf" });
  const tries = [
    { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: text },
    { method: "POST", mode: "no-cors", body: new URLSearchParams({ text: "csrf" }) },
    { method: "POST", headers: { "Content-Type": "application/json" }, body: text },
  ];
  for (const options of tries) {
    try { await fetch(target + "/chat/send", options); } catch (err) { /* refused: fine */ }
  }
  return "done";
};
</script>"""


@pytest.mark.browser
@pytest.mark.asyncio
async def test_a_foreign_page_in_chromium_cannot_post_to_the_chat(
    simulator: DingTalkSimulator, bot: tuple[Any, RecordingHandler], http: aiohttp.ClientSession
) -> None:
    """In headless Chromium, a page on another origin posting to /chat/send (no-cors text/plain,
    a form body, JSON) delivers nothing: the next message the bot gets is the page's own."""
    from aiohttp import web
    from playwright.async_api import async_playwright

    _, handler = bot

    async def attacker_page(_request: web.Request) -> web.Response:
        return web.Response(text=ATTACKER_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", attacker_page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    attacker = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page()
                await page.goto(attacker)
                assert await page.evaluate("(t) => window.attack(t)", simulator.base_url) == "done"
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    status, _ = await post_json(http, f"{simulator.base_url}/chat/send", {"text": "legit"})
    assert status == 200
    assert (await handler.next_message()).text.content == "legit"
