"""The DingTalk Stream-mode bot: the only module that imports ``dingtalk_stream``.

The SDK parses frames, routes them to our handler and builds ACKs. The connection loop is ours:
the SDK's ``start()`` sleeps a fixed 10 s between attempts, blocks the event loop opening the
connection (synchronous ``requests`` with no timeout) and swallows cancellation, so it can neither
back off nor stop cleanly. The handler acknowledges at once (DingTalk redelivers frames not ACKed
within about 60 s) and runs the work as a tracked task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import unicodedata
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import dingtalk_stream
import websockets
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage

from imgbot.config import Settings
from imgbot.conversation import Responder
from imgbot.errors import StorageError
from imgbot.metrics import Metrics, StatusServer
from imgbot.models import ImageRequest
from imgbot.reply import DEFAULT_OPENAPI

log = logging.getLogger(__name__)
TOPIC = ChatbotMessage.TOPIC
STORAGE_PROBE_SECONDS = 30.0
STORAGE_FRESH_SECONDS = 90.0
STABLE_SESSION_SECONDS = 30.0


def clean_prompt(text: str) -> str:
    """Drop control and invisible format characters (NUL, zero-width, bidi) and fold spaces."""
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(kept.split())


def to_request(data: dict[str, Any]) -> ImageRequest:
    """Turn a chatbot message payload into our request value (raises on malformed payloads)."""
    message = ChatbotMessage.from_dict(data)
    msg_id = message.message_id
    if not isinstance(msg_id, str) or not msg_id:
        raise ValueError("message has no msgId")
    prompt = ""
    if message.message_type == "text" and message.text is not None:
        prompt = clean_prompt(str(message.text.content or ""))
    return ImageRequest(
        prompt=prompt,
        msg_id=msg_id,
        conversation_id=str(message.conversation_id or ""),
        conversation_type=str(message.conversation_type or "1"),
        sender_id=str(message.sender_id or ""),
        sender_staff_id=str(message.sender_staff_id or ""),
        sender_nick=str(message.sender_nick or ""),
        session_webhook=str(message.session_webhook or ""),
        webhook_expires_at_ms=int(message.session_webhook_expired_time or 0),
        robot_code=str(message.robot_code or ""),
        message_type=str(message.message_type or "unknown"),
    )


class _Handler(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]
    """Parses, acknowledges, and hands the request to the bot as a tracked task."""

    def __init__(self, bot: Bot) -> None:
        super().__init__()
        self._bot = bot

    async def process(self, callback: CallbackMessage) -> tuple[int, str]:
        try:
            request = to_request(callback.data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignored a malformed bot message frame: %s", type(exc).__name__)
            return AckMessage.STATUS_OK, "ignored"
        self._bot.accept(request)
        return AckMessage.STATUS_OK, "OK"


class Bot:
    """The bot process: one stream connection (re-made with backoff) and the tracked work."""

    def __init__(
        self,
        settings: Settings,
        responder: Responder,
        *,
        client_id: str,
        client_secret: str,
        openapi_endpoint: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.responder = responder
        self.metrics = metrics or Metrics()
        self._credential = dingtalk_stream.Credential(client_id, client_secret)
        self._openapi = (openapi_endpoint or DEFAULT_OPENAPI).rstrip("/")
        self._client = dingtalk_stream.DingTalkStreamClient(
            self._credential, logger=logging.getLogger("dingtalk_stream.client")
        )
        self._client.register_callback_handler(TOPIC, _Handler(self))
        self._client.pre_start()
        quiet_sdk_logs()  # after the handler exists: its constructor resets its logger to INFO
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._session_task: asyncio.Task[None] | None = None
        self.connected = False
        self.reconnects = 0

    def accept(self, request: ImageRequest) -> None:
        """Start answering ``request`` unless it is a repeat."""
        if not self.responder.is_new(request.msg_id):
            log.info("msg %s: duplicate delivery ignored", request.msg_id)
            return
        self._track(self.responder.respond(request))

    def _track(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy when connected to DingTalk and storage answered recently."""
        age = time.monotonic() - self.metrics.last_storage_ok
        storage_fresh = self.metrics.last_storage_ok > 0 and age < STORAGE_FRESH_SECONDS
        return self.connected and storage_fresh, {
            "dingtalk_connected": self.connected,
            "storage_answered_seconds_ago": round(age, 1) if self.metrics.last_storage_ok else None,
            "in_flight": self.responder.in_flight,
        }

    async def run(self) -> None:
        """Serve until ``stop()``: stream connection, storage probe and the status endpoints."""
        status = None
        if self.settings.metrics_port:
            status = StatusServer(
                self.metrics, self.health, self.settings.metrics_host, self.settings.metrics_port
            )
            await status.start()
        probe = asyncio.create_task(self._probe_storage())
        try:
            await self._connect_loop()
        finally:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            if status is not None:
                await status.stop()

    async def _probe_storage(self) -> None:
        storage = self.responder.pipeline.storage
        while True:
            try:
                await asyncio.to_thread(storage.probe)
                self.metrics.storage_ok()
            except StorageError as exc:
                log.warning("storage probe failed: %s", exc)
            await asyncio.sleep(STORAGE_PROBE_SECONDS)

    async def _connect_loop(self) -> None:
        """Keep a stream connection until ``stop()``; then let in-flight work finish or cancel."""
        attempt = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            session = asyncio.create_task(self._session())
            self._session_task = session
            try:
                await session
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise  # the bot itself is being cancelled, not just this session
            except (
                OSError,
                aiohttp.ClientError,
                websockets.WebSocketException,
                TimeoutError,
                ValueError,
                KeyError,
                TypeError,
            ) as exc:
                log.warning(
                    "stream connection failed: %s: %s",
                    type(exc).__name__,
                    str(exc).split("?", 1)[0][:200],
                )
            except Exception:  # never let one odd failure end the bot; back off and retry
                log.exception("stream connection failed unexpectedly")
            finally:
                self._session_task = None
                if not session.done():
                    session.cancel()
            if time.monotonic() - started > STABLE_SESSION_SECONDS:
                attempt = 0  # only a connection that held for a while resets the backoff
            if self._stopping.is_set():
                break
            delay = min(30.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)  # noqa: S311
            attempt = min(attempt + 1, 8)
            self.reconnects += 1
            log.info("reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        await self._drain()

    async def _session(self) -> None:
        endpoint, ticket = await self._open_connection()
        uri = f"{endpoint}?ticket={quote_plus(ticket)}"
        async with websockets.connect(
            uri, open_timeout=10, ping_interval=20, max_size=2**20
        ) as websocket:
            self._client.websocket = websocket  # the SDK sends ACKs through it
            self.connected = True
            log.info("connected to DingTalk stream")
            try:
                async for raw in websocket:
                    self._track(self._route(raw, websocket))
            finally:
                self.connected = False

    async def _open_connection(self) -> tuple[str, str]:
        body = {
            "clientId": self._credential.client_id,
            "clientSecret": self._credential.client_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": TOPIC}],
            "ua": "imgbot/dingtalk-stream",
            "localIp": "",
        }
        timeout = aiohttp.ClientTimeout(total=15)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(
                self._openapi + "/v1.0/gateway/connections/open",
                json=body,
                headers={"Accept": "application/json"},
            ) as response,
        ):
            if response.status != 200:
                raise ValueError(f"open connection answered HTTP {response.status}")
            answer = await response.json(content_type=None)
        return str(answer["endpoint"]), str(answer["ticket"])

    async def _route(self, raw: str | bytes, websocket: Any) -> None:
        try:
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                raise TypeError("frame is not an object")
        except (ValueError, TypeError):
            log.warning("ignored a malformed stream frame (%d bytes)", len(raw))
            return
        try:
            result = await self._client.route_message(frame)
        except websockets.ConnectionClosed:
            return
        except Exception as exc:  # the SDK raises anything on odd frames; keep serving
            log.warning("could not route a frame: %s", type(exc).__name__)
            return
        if result == dingtalk_stream.DingTalkStreamClient.TAG_DISCONNECT:
            log.info("DingTalk asked to reconnect")
            await websocket.close()

    def stop(self) -> None:
        """Ask the bot to stop: no new connection, in-flight work gets the grace period."""
        self._stopping.set()
        if self._session_task is not None:
            self._session_task.cancel()  # also while the connection is still being opened

    async def _drain(self) -> None:
        """Let tracked work (and work it starts) finish within the grace period, then cancel."""
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            log.info(
                "waiting up to %.0f s for %d request(s)",
                self.settings.shutdown_grace_seconds,
                len(pending),
            )
        while pending and time.monotonic() < deadline:
            await asyncio.wait(pending, timeout=deadline - time.monotonic())
            pending = {t for t in self._tasks if not t.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=3)


def quiet_sdk_logs() -> None:
    """The SDK logs a warning for every ping frame; keep only its errors."""
    for name in ("dingtalk_stream", "dingtalk_stream.client", "dingtalk_stream.handler"):
        logging.getLogger(name).setLevel(logging.ERROR)
