"""The chat page: a browser conversation with the bot, relayed through the simulator.

The web user sends text, a picture (alone or with text, as richText), or a text quoting an
earlier message of the conversation, the bot's images included. Pictures travel base64-encoded in
the JSON body (the site guard only lets JSON posts through) and are kept by the file API.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from imgbot.simulator.cards import Card
from imgbot.simulator.files import FileApi, sniff_image_type
from imgbot.simulator.models import (
    WEB_CONVERSATION_ID,
    JSONDict,
    Reply,
    error_body,
    is_media_id,
    media_path,
    now_ms,
    parse_json_object,
)
from imgbot.simulator.users import (
    picture_fields,
    picture_item,
    replied_from_message,
    replied_from_reply,
    rich_text_fields,
)

MAX_TEXT_CHARS = 10_000


class ChatPage:
    """Serves the page, relays what the web user sends, and lists the web conversation."""

    def __init__(
        self,
        deliver: Callable[[JSONDict], Awaitable[JSONDict]],
        connected: Callable[[], bool],
        files: FileApi,
    ) -> None:
        self._deliver = deliver
        self._connected = connected
        self._files = files
        self.entries: list[JSONDict] = []
        self._sources: dict[str, JSONDict | Reply] = {}
        self._card_entries: dict[str, int] = {}

    def routes(self) -> list[web.RouteDef]:
        """The chat page's HTTP routes."""
        return [
            web.get("/", self.page),
            web.post("/chat/send", self.send),
            web.get("/chat/messages", self.messages),
            web.get("/chat/status", self.status),
            web.get("/chat/pictures/{code}", self.picture),
        ]

    def note_user_message(self, conversation_id: str, message: JSONDict) -> None:
        """Add a user message to the log when it belongs to the web conversation."""
        if conversation_id != WEB_CONVERSATION_ID:
            return
        kind = str(message.get("msgtype", "text"))
        entry: JSONDict = {"from": "user", "msgtype": kind, "title": None, "text": ""}
        text = message.get("text")
        text = text if isinstance(text, dict) else None
        content = message.get("content")
        content = content if isinstance(content, dict) else {}
        if text is not None:
            entry["text"] = str(text.get("content", ""))
            replied = text.get("repliedMsg")
            if isinstance(replied, dict):
                entry["quote"] = _quote_summary(replied)
        codes = [content.get("downloadCode")] if kind == "picture" else []
        for item in content.get("richText", []) if kind == "richText" else []:
            if "downloadCode" in item:
                codes.append(item["downloadCode"])
            else:
                entry["text"] += str(item.get("text", ""))
        if codes and isinstance(codes[0], str):
            entry["picture"] = f"/chat/pictures/{codes[0]}"
        self._add(entry, message)

    def note_reply(self, reply: Reply) -> None:
        """Add a bot reply to the log when it belongs to the web conversation."""
        if reply.conversation_id == WEB_CONVERSATION_ID:
            entry = {"from": "bot", "msgtype": reply.msgtype, "title": reply.title}
            if reply.msgtype == "image" and is_media_id(reply.text):
                entry["picture"] = media_path(reply.text)  # shown from the media store
            self._add({**entry, "text": reply.text}, reply)

    def note_card(self, card: Card) -> None:
        """Show a card of the web conversation, or change it in place: its entry keeps its id
        and place, and its ``rev`` counts the versions (the page redraws an entry whose ``rev``
        changed)."""
        if card.conversation_id != WEB_CONVERSATION_ID:
            return
        params = card.params
        entry: JSONDict = {
            "from": "bot",
            "msgtype": "card",
            "title": params.get("title", ""),
            "text": params.get("markdown", ""),
            "card": {key: params.get(key, "") for key in ("status", "image", "original", "expiry")},
            "rev": len(card.versions),
        }
        index = self._card_entries.get(card.out_track_id)
        if index is None:
            self._card_entries[card.out_track_id] = len(self.entries)
            self._add(entry, {"msgtype": "interactiveCard", "text": entry["text"]})
            return
        old = self.entries[index]
        self.entries[index] = {**entry, "id": old["id"], "time": old["time"]}

    def _add(self, entry: JSONDict, source: JSONDict | Reply) -> None:
        entry_id = f"e{len(self.entries) + 1}"
        self._sources[entry_id] = source
        self.entries.append({**entry, "id": entry_id, "time": now_ms()})

    async def page(self, _request: web.Request) -> web.Response:
        """`GET /`: the chat page."""
        html = resources.files("imgbot.simulator").joinpath("chat_page.html")
        return web.Response(text=html.read_text(encoding="utf-8"), content_type="text/html")

    async def send(self, request: web.Request) -> web.Response:
        """`POST /chat/send` `{"text", "picture" (base64, optional), "quote" (an entry id,
        optional)}`: send it to the bot as the web user."""
        body = parse_json_object(await request.read()) or {}
        fields = self._fields(body)
        if isinstance(fields, str):
            return web.json_response(error_body("invalidParameter", fields), status=400)
        if not self._connected():
            return web.json_response(error_body("botNotConnected", "机器人未连接"), status=409)
        message = await self._deliver(fields)
        return web.json_response({"msgId": message["msgId"]})

    def _fields(self, body: JSONDict) -> JSONDict | str:
        """The chatbot message fields for what the page sent, or why it cannot be sent."""
        text, quote = body.get("text", ""), body.get("quote")
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            return "消息不合法"
        text = text.strip()
        data = self._picture_of(body.get("picture"))
        if isinstance(data, str):
            return data
        if quote is not None:
            return self._quote(str(quote), text) if not data else "引用消息时不能再附图片"
        if data:
            stored = self._files.add(data)
            item = picture_item(stored.download_code, stored.picture_download_code)
            if text:
                return rich_text_fields([{"text": text}, item])
            return picture_fields(stored.download_code, stored.picture_download_code)
        return {"msgtype": "text", "text": {"content": text}} if text else "消息不能为空"

    def _picture_of(self, picture: object) -> bytes | str:
        """The attached picture's bytes (b"" for none), or why it is refused."""
        if picture is None:
            return b""
        try:
            data = base64.b64decode(str(picture), validate=True)
        except (binascii.Error, ValueError):
            return "图片不合法"
        if not data or len(data) > self._files.max_picture_bytes:
            return "图片为空或太大"
        return data

    def _quote(self, entry_id: str, text: str) -> JSONDict | str:
        source = self._sources.get(entry_id)
        if source is None or not text:
            return "只能引用本会话里的消息，并写下文字"
        replied = (
            replied_from_reply(source, self._files.add_remote)
            if isinstance(source, Reply)
            else replied_from_message(source)
        )
        said = {"content": text, "isReplyMsg": True, "repliedMsg": replied}
        return {"msgtype": "text", "text": said}

    async def picture(self, request: web.Request) -> web.Response:
        """`GET /chat/pictures/{code}`: a picture the web user sent, to show in the log."""
        stored = self._files.picture(request.match_info["code"])
        if stored is None:
            return web.json_response(error_body("notFound", "图片不存在"), status=404)
        # Only real image types are named; anything else is served as opaque bytes.
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        }
        return web.Response(
            body=stored.data, content_type=sniff_image_type(stored.data), headers=headers
        )

    async def messages(self, _request: web.Request) -> web.Response:
        """`GET /chat/messages`: the web conversation so far, oldest first."""
        return web.json_response(self.entries)

    async def status(self, _request: web.Request) -> web.Response:
        """`GET /chat/status`: `{"connected": …}`, whether a bot websocket is open."""
        return web.json_response({"connected": self._connected()})


def _quote_summary(replied: JSONDict) -> JSONDict:
    """What the page shows of a quoted message: its type and a line of its text."""
    content = replied.get("content")
    text = content.get("text", "") if isinstance(content, dict) else ""
    return {"msgtype": replied.get("msgType", ""), "text": str(text or "")[:80]}
