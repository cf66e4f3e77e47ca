"""The chat page: a browser conversation with the bot, relayed through the simulator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from imgbot.simulator.models import (
    WEB_CONVERSATION_ID,
    JSONDict,
    Reply,
    error_body,
    now_ms,
    parse_json_object,
)


class ChatPage:
    """Serves the page, relays what the web user types, and lists the web conversation."""

    def __init__(
        self,
        deliver: Callable[[str], Awaitable[JSONDict]],
        connected: Callable[[], bool],
    ) -> None:
        self._deliver = deliver
        self._connected = connected
        self.entries: list[JSONDict] = []

    def routes(self) -> list[web.RouteDef]:
        """The chat page's HTTP routes."""
        return [
            web.get("/", self.page),
            web.post("/chat/send", self.send),
            web.get("/chat/messages", self.messages),
            web.get("/chat/status", self.status),
        ]

    def note_user_text(self, conversation_id: str, text: str) -> None:
        """Add a user message to the log when it belongs to the web conversation."""
        if conversation_id == WEB_CONVERSATION_ID:
            entry = {"from": "user", "msgtype": "text", "title": None, "text": text}
            self.entries.append({**entry, "time": now_ms()})

    def note_reply(self, reply: Reply) -> None:
        """Add a bot reply to the log when it belongs to the web conversation."""
        if reply.conversation_id == WEB_CONVERSATION_ID:
            entry = {"from": "bot", "msgtype": reply.msgtype, "title": reply.title}
            self.entries.append({**entry, "text": reply.text, "time": now_ms()})

    async def page(self, _request: web.Request) -> web.Response:
        """`GET /`: the chat page."""
        html = resources.files("imgbot.simulator").joinpath("chat_page.html")
        return web.Response(text=html.read_text(encoding="utf-8"), content_type="text/html")

    async def send(self, request: web.Request) -> web.Response:
        """`POST /chat/send` `{"text": …}`: send it to the bot as the web user."""
        body = parse_json_object(await request.read())
        text = body.get("text") if body else None
        if not isinstance(text, str) or not text.strip():
            return web.json_response(error_body("invalidParameter", "消息不能为空"), status=400)
        if not self._connected():
            return web.json_response(error_body("botNotConnected", "机器人未连接"), status=409)
        message = await self._deliver(text)
        return web.json_response({"msgId": message["msgId"]})

    async def messages(self, _request: web.Request) -> web.Response:
        """`GET /chat/messages`: the web conversation so far, oldest first."""
        return web.json_response(self.entries)

    async def status(self, _request: web.Request) -> web.Response:
        """`GET /chat/status`: `{"connected": …}`, whether a bot websocket is open."""
        return web.json_response({"connected": self._connected()})
