"""The simulated Stream gateway: open-connection tickets, the bot's websockets, frames and ACKs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSCloseCode, WSMsgType, web

from imgbot.simulator.models import (
    BOT_TOPIC,
    JSONDict,
    error_body,
    new_id,
    parse_json_object,
    stream_frame,
)

log = logging.getLogger(__name__)


@dataclass
class _Connection:
    id: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None


class StreamGateway:
    """Hands out tickets, holds the bot's websockets, pushes frames and records the ACKs."""

    def __init__(self, client_id: str, client_secret: str, on_change: Callable[[], None]) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refuse_connections = False
        self.acks: list[JSONDict] = []
        self.connections_opened = 0
        self._on_change = on_change
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._frames_by_msg_id: dict[str, list[str]] = {}

    @property
    def connected(self) -> bool:
        """Whether a bot websocket is open."""
        return bool(self._connections)

    def routes(self) -> list[web.RouteDef]:
        """The gateway's HTTP routes."""
        return [
            web.post("/v1.0/gateway/connections/open", self.open_connection),
            web.get("/gateway/connect", self.connect),
        ]

    async def open_connection(self, request: web.Request) -> web.Response:
        """`POST /v1.0/gateway/connections/open`: check the credentials, issue a ticket."""
        if self.refuse_connections:
            return web.json_response(error_body("ServiceUnavailable", "网关暂不可用"), status=503)
        body = parse_json_object(await request.read())
        if (
            body is None
            or body.get("clientId") != self.client_id
            or body.get("clientSecret") != self.client_secret
        ):
            return web.json_response(error_body("authFailed", "鉴权失败"), status=401)
        ticket = new_id()
        self._tickets.add(ticket)
        self.connections_opened += 1
        endpoint = f"ws://{request.host}/gateway/connect"
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        """`GET /gateway/connect?ticket=…`: become the bot's websocket; a ticket works once."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response(error_body("invalidTicket", "ticket无效或已使用"), status=401)
        self._tickets.discard(ticket)
        # A short close timeout: stop() must not hang on a client that never answers the close.
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        conn = _Connection(new_id("conn-"), ws, request.transport)
        self._connections.append(conn)
        log.info("bot connected (%s)", conn.id)
        self._on_change()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_client_text(msg.data)
        finally:
            if conn in self._connections:
                self._connections.remove(conn)
            log.info("bot disconnected (%s)", conn.id)
            self._on_change()
        return ws

    def _on_client_text(self, data: str) -> None:
        frame = parse_json_object(data.encode())
        if frame is None:
            log.warning("ignored a websocket message that is not a JSON object: %.200s", data)
            return
        self.acks.append(frame)
        self._on_change()

    def find_ack(self, message_id: str) -> JSONDict | None:
        """The ACK of frame `message_id`, or of any frame that carried that chatbot msgId."""
        wanted = {message_id, *self._frames_by_msg_id.get(message_id, [])}
        for ack in self.acks:
            headers = ack.get("headers")
            if isinstance(headers, dict) and headers.get("messageId") in wanted:
                return ack
        return None

    def _latest(self) -> _Connection:
        if not self._connections:
            raise ConnectionError("no bot is connected to the DingTalk simulator")
        return self._connections[-1]

    def ensure_connected(self) -> None:
        """Raise ConnectionError unless a bot is connected."""
        self._latest()

    async def send_raw(self, raw: str) -> None:
        """Send one raw text frame to the most recently connected bot."""
        await self._latest().ws.send_str(raw)

    async def send_frame(self, frame_type: str, topic: str, data: JSONDict) -> str:
        """Send a protocol frame to the most recently connected bot; return its messageId."""
        conn = self._latest()
        frame = stream_frame(frame_type, topic, data, app_id=self.client_id, connection_id=conn.id)
        await conn.ws.send_str(json.dumps(frame, ensure_ascii=False))
        message_id: str = frame["headers"]["messageId"]
        log.info("sent %s frame %s (topic %s)", frame_type, message_id, topic)
        return message_id

    async def send_callback(self, message: JSONDict) -> str:
        """Push a chatbot message on the bot topic; return the frame's messageId."""
        frame_id = await self.send_frame("CALLBACK", BOT_TOPIC, message)
        self._frames_by_msg_id.setdefault(str(message.get("msgId")), []).append(frame_id)
        return frame_id

    async def drop(self) -> None:
        """Cut every websocket without a close frame, as a network failure would."""
        dropped, self._connections = self._connections, []
        for conn in dropped:
            if conn.transport is not None:
                conn.transport.abort()
            else:
                await conn.ws.close(code=WSCloseCode.INTERNAL_ERROR)
        log.info("dropped %d websocket(s)", len(dropped))
        self._on_change()

    async def close_all(self) -> None:
        """Close every websocket politely (1001 going away), as a server shutting down does."""
        for conn in list(self._connections):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulator stopping")
