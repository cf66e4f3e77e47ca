"""The simulated Stream gateway: open-connection tickets, the bot's websockets, frames and ACKs.

An AppKey may hold several connections at once. Each CALLBACK goes to one live connection chosen
at random, and one not ACKed in time is sent again (see delivery.py), as DingTalk does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSCloseCode, WSMsgType, web

from imgbot.simulator.delivery import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_MAX_REDELIVERIES,
    Delivery,
    DeliveryLedger,
)
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
    # After a SYSTEM disconnect DingTalk stops delivering to the socket, before it closes.
    draining: bool = False


class StreamGateway:
    """Hands out tickets, holds the bot's websockets, pushes frames and records the ACKs."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        on_change: Callable[[], None],
        *,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        max_redeliveries: int = DEFAULT_MAX_REDELIVERIES,
        seed: int | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refuse_connections = False
        self.acks: list[JSONDict] = []
        self.connections_opened = 0
        self.ledger = DeliveryLedger(
            ack_timeout_s=ack_timeout_s,
            max_redeliveries=max_redeliveries,
            seed=seed,
            on_change=on_change,
        )
        self.ledger.redeliver = self._start_redelivery
        self._on_change = on_change
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._frames_by_msg_id: dict[str, list[str]] = {}
        self._live_changed = asyncio.Event()
        self._redeliveries: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Whether a bot websocket is open (and not draining after a disconnect frame)."""
        return bool(self._live())

    @property
    def connected_count(self) -> int:
        """How many bot websockets are open and may be chosen for a push."""
        return len(self._live())

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
        """`GET /gateway/connect?ticket=…`: one more bot websocket; a ticket works once."""
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
        self._changed()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_client_text(msg.data)
        finally:
            self._forget(conn)
            log.info("bot disconnected (%s)", conn.id)
        return ws

    def _on_client_text(self, data: str) -> None:
        frame = parse_json_object(data.encode())
        if frame is None:
            log.warning("ignored a websocket message that is not a JSON object: %.200s", data)
            return
        self.acks.append(frame)
        headers = frame.get("headers")
        if isinstance(headers, dict) and isinstance(headers.get("messageId"), str):
            self.ledger.acked(headers["messageId"])
        self._on_change()

    def find_ack(self, message_id: str) -> JSONDict | None:
        """The ACK of frame `message_id`, or of any frame that carried that chatbot msgId."""
        wanted = {message_id, *self._frames_by_msg_id.get(message_id, [])}
        for ack in self.acks:
            headers = ack.get("headers")
            if isinstance(headers, dict) and headers.get("messageId") in wanted:
                return ack
        return None

    def _live(self) -> list[_Connection]:
        return [conn for conn in self._connections if not conn.draining]

    def _latest(self) -> _Connection:
        live = self._live()
        if not live:
            raise ConnectionError("no bot is connected to the DingTalk simulator")
        return live[-1]

    def ensure_connected(self) -> None:
        """Raise ConnectionError unless a bot is connected."""
        self._latest()

    async def send_raw(self, raw: str) -> None:
        """Send one raw text frame to the most recently connected bot."""
        await self._latest().ws.send_str(raw)

    async def send_frame(self, frame_type: str, topic: str, data: JSONDict) -> str:
        """Send a protocol frame to the most recently connected bot; return its messageId.

        After a `disconnect` frame that connection gets no more pushes.
        """
        conn = self._latest()
        message_id = await self._send_on(conn, frame_type, topic, data)
        if (frame_type, topic) == ("SYSTEM", "disconnect"):
            conn.draining = True
            self._changed()
        return message_id

    async def _send_on(self, conn: _Connection, frame_type: str, topic: str, data: JSONDict) -> str:
        frame = stream_frame(frame_type, topic, data, app_id=self.client_id, connection_id=conn.id)
        await conn.ws.send_str(json.dumps(frame, ensure_ascii=False))
        message_id: str = frame["headers"]["messageId"]
        log.info("sent %s frame %s (topic %s) on %s", frame_type, message_id, topic, conn.id)
        return message_id

    async def send_callback(self, message: JSONDict) -> str:
        """Push a chatbot message on the bot topic to one live connection chosen at random;
        return the frame's messageId. Raises ConnectionError when none is live."""
        return (await self._deliver(message)).frame_id

    async def _deliver(self, message: JSONDict) -> Delivery:
        while live := self._live():
            chosen = self.ledger.choose([conn.id for conn in live])
            conn = next(c for c in live if c.id == chosen)
            try:
                frame_id = await self._send_on(conn, "CALLBACK", BOT_TOPIC, message)
            except ConnectionError:
                self._forget(conn)  # it died under us: DingTalk would pick another
                continue
            self._frames_by_msg_id.setdefault(str(message.get("msgId")), []).append(frame_id)
            return self.ledger.sent(message, frame_id, conn.id)
        raise ConnectionError("no bot is connected to the DingTalk simulator")

    def _start_redelivery(self, msg_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._redeliver(msg_id))
        self._redeliveries.add(task)
        task.add_done_callback(self._redeliveries.discard)

    async def _redeliver(self, msg_id: str) -> None:
        """Send `msg_id` again in a new frame, waiting for a live connection if there is none."""
        while (message := self.ledger.message(msg_id)) is not None:
            if not self._live():
                self._live_changed.clear()
                await self._live_changed.wait()
                continue
            try:
                delivery = await self._deliver(message)
            except ConnectionError:
                continue  # every connection died while we tried; wait for the next one
            log.info(
                "redelivered %s as frame %s (attempt %d)",
                msg_id,
                delivery.frame_id,
                delivery.attempt,
            )
            return

    def _forget(self, conn: _Connection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)
            self._changed()

    def _changed(self) -> None:
        self._live_changed.set()
        self._on_change()

    async def drop(self) -> None:
        """Cut every websocket without a close frame, as a network failure would."""
        dropped, self._connections = self._connections, []
        for conn in dropped:
            if conn.transport is not None:
                conn.transport.abort()
            else:
                await conn.ws.close(code=WSCloseCode.INTERNAL_ERROR)
        log.info("dropped %d websocket(s)", len(dropped))
        self._changed()

    async def close_all(self) -> None:
        """Close every websocket politely (1001 going away), as a server shutting down does."""
        self.ledger.cancel_all()
        for conn in list(self._connections):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulator stopping")
