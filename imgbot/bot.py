"""The DingTalk Stream connection: the only module that imports ``dingtalk_stream``.

The SDK parses frames, routes them to our handler and builds ACKs. The connection loop is ours:
the SDK's ``start()`` sleeps a fixed 10 s between attempts, blocks the event loop opening the
connection (synchronous ``requests`` with no timeout) and swallows cancellation, so it can neither
back off nor stop cleanly. Reconnecting follows the one retry policy (``imgbot.net.retry``). The
handler acknowledges at once (DingTalk redelivers frames not ACKed within about 60 s): it parses
the payload into an ``ImageRequest`` and hands it to ``on_request``, which must not block.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import dingtalk_stream
import websockets
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage
from dingtalk_stream.frames import Headers

from imgbot.chat import bounded_json
from imgbot.chat.inbound import MalformedMessage, parse_request, unreadable_request
from imgbot.errors import ImgbotError
from imgbot.jobs.task_tracker import TaskTracker
from imgbot.models import ImageRequest
from imgbot.net import retry
from imgbot.observe import Observer

log = logging.getLogger(__name__)
TOPIC = ChatbotMessage.TOPIC
STABLE_SESSION_SECONDS = 30.0
"""Only a connection that held this long resets the reconnect backoff."""
RECONNECT = retry.RetryPolicy(attempts=None, timeout=None, initial_wait=0.5, max_wait=30.0)
OPEN_TIMEOUT_SECONDS = 15.0


class ConnectionLost(ImgbotError):
    """The stream connection ended soon after it opened; back off before the next one."""


class _Handler(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]
    """Parses, acknowledges, and hands the request on; never blocks."""

    def __init__(
        self,
        on_request: Callable[[ImageRequest], None],
        observer: Observer,
        parse: Callable[[Any], ImageRequest] = parse_request,
    ) -> None:
        super().__init__()
        self._on_request = on_request
        self._observer = observer
        self._parse = parse

    async def process(self, callback: CallbackMessage) -> tuple[int, str]:
        try:
            request = self._parse(callback.data)
        except MalformedMessage as exc:
            self._observer.frame("malformed")
            log.warning("ignored a malformed bot message: %s", exc)
            return AckMessage.STATUS_OK, "ignored"
        except Exception as exc:  # a bug reading one message: ACK it and answer, never redeliver
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.warning(
                "could not read a bot message (%s at %s:%s)",
                type(exc).__name__,
                where.filename.rsplit("/", 1)[-1],
                where.lineno,
            )
            try:
                fallback = unreadable_request(callback.data)
            except Exception:  # not even its addressing can be read: ACK it, answer nobody
                fallback = None
            if fallback is None:
                self._observer.frame("malformed")
                return AckMessage.STATUS_OK, "ignored"
            request = fallback
        self._on_request(request)
        return AckMessage.STATUS_OK, "OK"


class DingTalkStream:
    """One Stream-mode connection for an AppKey, re-opened with backoff until cancelled."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        openapi_endpoint: str,
        on_request: Callable[[ImageRequest], None],
        tracker: TaskTracker,
        observer: Observer,
    ) -> None:
        self._credential = dingtalk_stream.Credential(client_id, client_secret)
        self._openapi = openapi_endpoint.rstrip("/")
        self._tracker = tracker
        self._observer = observer
        self._client = dingtalk_stream.DingTalkStreamClient(
            self._credential, logger=logging.getLogger("dingtalk_stream.client")
        )
        self._client.register_callback_handler(TOPIC, _Handler(on_request, observer))
        self._client.pre_start()
        quiet_sdk_logs()  # after the handler exists: its constructor resets its logger to INFO

    def __repr__(self) -> str:
        client_id = self._credential.client_id
        return f"DingTalkStream(openapi={self._openapi!r}, client_id={client_id!r})"

    async def run(self) -> None:
        """Keep a connection open until cancelled; each short-lived one backs off the next."""
        while True:
            await retry.call(
                self._held_session,
                policy=RECONNECT,
                retry_on=lambda exc: isinstance(exc, Exception),  # never let one failure end it
                what="stream",
                observer=self._observer,
            )

    async def _held_session(self) -> None:
        """One connection; it ends the retry loop (resetting the backoff) if it held long enough,
        however it ended."""
        started = time.monotonic()
        try:
            await self._session()
        except Exception as exc:
            held = time.monotonic() - started
            if held < STABLE_SESSION_SECONDS:
                raise
            log.warning(
                "stream connection lost after %.0f s (%s); reconnecting", held, type(exc).__name__
            )
            return
        held = time.monotonic() - started
        if held < STABLE_SESSION_SECONDS:
            raise ConnectionLost(f"connection closed after {held:.1f} s")
        log.info("stream connection closed after %.0f s; reconnecting", held)

    async def _session(self) -> None:
        endpoint, ticket = await self._open_connection()
        uri = f"{endpoint}?ticket={quote_plus(ticket)}"
        async with websockets.connect(
            uri, open_timeout=10, ping_interval=20, max_size=2**20
        ) as websocket:
            self._client.websocket = websocket  # the SDK sends ACKs through it
            self._observer.connection(True)
            log.info("connected to DingTalk stream")
            try:
                async for raw in websocket:
                    self._tracker.track(self._route(raw, websocket))
            finally:
                self._observer.connection(False)

    async def _open_connection(self) -> tuple[str, str]:
        body = {
            "clientId": self._credential.client_id,
            "clientSecret": self._credential.client_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": TOPIC}],
            "ua": "imgbot/dingtalk-stream",
            "localIp": "",
        }
        timeout = aiohttp.ClientTimeout(total=OPEN_TIMEOUT_SECONDS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(
                self._openapi + "/v1.0/gateway/connections/open",
                json=body,
                headers={"Accept": "application/json"},
            ) as response,
        ):
            if response.status != 200:
                raise ConnectionLost(f"open connection answered HTTP {response.status}")
            answer = await response.json(content_type=None)
        try:
            return str(answer["endpoint"]), str(answer["ticket"])
        except (KeyError, TypeError):
            raise ConnectionLost("open connection answered without endpoint and ticket") from None

    async def _route(self, raw: str | bytes, websocket: Any) -> None:
        try:
            frame = bounded_json.loads(raw)
            if not isinstance(frame, dict):
                raise TypeError("frame is not an object")
        except (ValueError, TypeError):
            self._observer.frame("malformed")
            log.warning("ignored a malformed stream frame (%d bytes)", len(raw))
            return
        kind = _frame_kind(frame)
        if kind == "ignored":
            self._observer.frame(kind)
            log.warning("ignored a stream frame of type %r", str(frame.get("type"))[:40])
            return
        if kind == "system":
            self._observer.frame(kind)
        if problem := _data_problem(frame):
            # The SDK would raise parsing it and never ACK: DingTalk would redeliver it in vain.
            self._observer.frame("malformed")
            log.warning("ignored a %s frame whose data is unreadable: %s", kind, problem)
            with contextlib.suppress(websockets.ConnectionClosed):
                await websocket.send(json.dumps(_ignored_ack(frame).to_dict()))
            return
        try:
            result = await self._client.route_message(frame)
        except websockets.ConnectionClosed:
            return
        except Exception as exc:  # the SDK raises anything on odd frames; keep serving
            self._observer.frame("malformed")
            log.warning("could not route a frame: %s", type(exc).__name__)
            return
        if result == dingtalk_stream.DingTalkStreamClient.TAG_DISCONNECT:
            log.info("DingTalk asked to reconnect")
            await websocket.close()


def _data_problem(frame: dict[str, Any]) -> str:
    """Why the frame's ``data`` (a JSON text) cannot be read within ``MAX_JSON_DEPTH`` levels;
    "" when it can (or there is none)."""
    data = frame.get("data")
    if not data:
        return ""  # the SDK reads no data then
    if not isinstance(data, str):
        return f"data is a {type(data).__name__}, not a JSON text"
    try:
        bounded_json.loads(data)
    except ValueError as exc:
        return str(exc)[:120]  # json's own words name a position, never the text
    return ""


def _ignored_ack(frame: dict[str, Any]) -> AckMessage:
    """The ACK ``ChatbotHandler.raw_process`` sends for a message the handler ignored."""
    headers = frame.get("headers")
    ack = AckMessage()
    ack.code = AckMessage.STATUS_OK
    ack.headers.message_id = headers.get("messageId", "") if isinstance(headers, dict) else ""
    ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
    ack.data = {"response": "ignored"}
    return ack


def _frame_kind(frame: dict[str, Any]) -> str:
    """``system``, ``callback`` (a chat message for our topic) or ``ignored`` (anything else)."""
    headers = frame.get("headers")
    topic = headers.get("topic") if isinstance(headers, dict) else None
    if frame.get("type") == "SYSTEM":
        return "system"
    if frame.get("type") == "CALLBACK" and topic == TOPIC:
        return "callback"
    return "ignored"


def quiet_sdk_logs() -> None:
    """The SDK logs a warning for every ping frame; keep only its errors."""
    for name in ("dingtalk_stream", "dingtalk_stream.client", "dingtalk_stream.handler"):
        logging.getLogger(name).setLevel(logging.ERROR)
