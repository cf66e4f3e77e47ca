"""DingTalkSimulator: a local DingTalk that pushes messages to a bot and records what it does.

The server runs on a LoopThread (see there why); the public coroutines hop onto its loop, so
callers on any event loop simply await them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from imgbot.simulator.cards import Card, CardApi, CardCall, CardRefusal
from imgbot.simulator.changes import ChangeSignal
from imgbot.simulator.chat import ChatPage
from imgbot.simulator.delivery import (
    DEFAULT_ACK_TIMEOUT_S,
    DEFAULT_MAX_REDELIVERIES,
    Delivery,
    TimerState,
)
from imgbot.simulator.files import FileApi, StoredPicture
from imgbot.simulator.gateway import StreamGateway
from imgbot.simulator.guard import site_guard
from imgbot.simulator.loop_thread import LoopThread
from imgbot.simulator.media import MediaApi, MediaUpload
from imgbot.simulator.models import (
    WEB_CONVERSATION_ID,
    WEB_USER_ID,
    WEB_USER_NICK,
    JSONDict,
    Reply,
    new_id,
)
from imgbot.simulator.openapi import OpenApi
from imgbot.simulator.users import (
    GROUP_CONVERSATION_ID,
    UserMessages,
    quote_fields,
    replied_from_message,
    replied_from_reply,
)

log = logging.getLogger(__name__)

__all__ = ["GROUP_CONVERSATION_ID", "DingTalkSimulator"]


class DingTalkSimulator:
    """A fake DingTalk on 127.0.0.1: Stream gateway, open APIs (replies, file download) and a chat
    page, in one server; the older oapi (media upload) on a port of its own. Users send text,
    pictures, richText and quotes."""

    def __init__(
        self,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",  # noqa: S107 - the simulator's fake secret
        robot_code: str = "sim-robot",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        max_redeliveries: int = DEFAULT_MAX_REDELIVERIES,
        seed: int | None = None,
    ) -> None:
        """``ack_timeout_s``: a CALLBACK not ACKed this long is sent again (same msgId, new frame
        id, a random live connection), at most ``max_redeliveries`` times. ``seed`` makes the
        choice of connection repeatable."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.robot_code = robot_code
        self.host = host
        self._port = port
        self._changes = ChangeSignal()
        self._gateway = StreamGateway(
            client_id,
            client_secret,
            self._changes.bump,
            ack_timeout_s=ack_timeout_s,
            max_redeliveries=max_redeliveries,
            seed=seed,
        )
        self._api = OpenApi(client_id, client_secret, robot_code, self._on_reply)
        self._files = FileApi(robot_code, self._api.token_valid, lambda: self.base_url)
        self._media = MediaApi(self._api.token_valid)
        self._oapi_port = 0
        self._oapi_runner: web.AppRunner | None = None
        self._cards = CardApi(
            robot_code, self._api.token_valid, self._api.one_to_one_conversation, self._on_card
        )
        self._chat = ChatPage(self._deliver_web, lambda: self._gateway.connected, self._files)
        self._users = UserMessages(
            self._gateway,
            self._api,
            self._files,
            base_url=lambda: self.base_url,
            note=self._chat.note_user_message,
        )
        self._thread = LoopThread("dingtalk-simulator")
        self._runner: web.AppRunner | None = None

    # ---- state the tests script and inspect --------------------------------------------------

    @property
    def refuse_connections(self) -> bool:
        """When True, open-connection answers HTTP 503."""
        return self._gateway.refuse_connections

    @refuse_connections.setter
    def refuse_connections(self, value: bool) -> None:
        self._gateway.refuse_connections = value

    @property
    def webhook_script(self) -> list[object]:
        """Scripted session-webhook answers, one consumed per POST: an int HTTP status, a dict
        answered in-band with HTTP 200, or ("hang", seconds) before answering normally."""
        return self._api.webhook_script

    @webhook_script.setter
    def webhook_script(self, value: list[object]) -> None:
        self._api.webhook_script = value

    @property
    def refuse_image_messages(self) -> bool:
        """When True, the robot send APIs refuse native image messages (sampleImageMsg)."""
        return self._api.refuse_image_messages

    @refuse_image_messages.setter
    def refuse_image_messages(self, value: bool) -> None:
        self._api.refuse_image_messages = value

    @property
    def slow_robot_answers_s(self) -> float:
        """Seconds the one-to-one robot API waits before answering a message it has delivered."""
        return self._api.slow_robot_answers_s

    @slow_robot_answers_s.setter
    def slow_robot_answers_s(self, value: float) -> None:
        self._api.slow_robot_answers_s = value

    @property
    def refuse_media_uploads(self) -> bool:
        """When True, the oapi media upload answers DingTalk's quota refusal (errcode 90020)."""
        return self._media.refuse_uploads

    @refuse_media_uploads.setter
    def refuse_media_uploads(self, value: bool) -> None:
        self._media.refuse_uploads = value

    @property
    def media_uploads(self) -> list[MediaUpload]:
        """Every call of the oapi media upload, refused ones included, in order."""
        return self._media.uploads

    def expire_access_tokens(self) -> None:
        """Make every access token given so far invalid (they expired early)."""
        self._api.expire_tokens()

    def media(self, media_id: str) -> bytes | None:
        """The picture uploaded as ``media_id``, if any."""
        return self._media.media(media_id)

    @property
    def oapi_url(self) -> str:
        """The root URL of the older API (oapi.dingtalk.com's place), on a port of its own
        (valid after `start`)."""
        if self._oapi_runner is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self._loopback_host}:{self._oapi_port}"

    @property
    def card_refusal(self) -> CardRefusal | None:
        """When set, every card call is refused: "permission" (HTTP 403, no
        Card.Instance.Write), "qps" (HTTP 403 QPS limit) or "server" (HTTP 500)."""
        return self._cards.refusal

    @card_refusal.setter
    def card_refusal(self, value: CardRefusal | None) -> None:
        self._cards.refusal = value

    @property
    def card_templates(self) -> set[str] | None:
        """The card templates that exist (None: any id); others are refused with HTTP 400."""
        return self._cards.templates

    @card_templates.setter
    def card_templates(self, value: set[str] | None) -> None:
        self._cards.templates = value

    @property
    def cards(self) -> dict[str, Card]:
        """Every card the bot created, by outTrackId, with each version of its data."""
        return self._cards.cards

    @property
    def card_calls(self) -> list[CardCall]:
        """Every call of the card API, refused ones too, in order."""
        return self._cards.calls

    @property
    def token_calls(self) -> int:
        """Calls of the access-token API."""
        return self._api.token_calls

    @property
    def replies(self) -> list[Reply]:
        """Every message the bot got accepted, in order."""
        return self._api.replies

    @property
    def acks(self) -> list[JSONDict]:
        """Every ACK frame the bot sent, parsed, in order."""
        return self._gateway.acks

    @property
    def webhook_attempts(self) -> int:
        """Every session-webhook POST, including refused and scripted ones."""
        return self._api.webhook_attempts

    @property
    def connected(self) -> bool:
        """Whether a bot websocket is open now."""
        return self._gateway.connected

    @property
    def connections_opened(self) -> int:
        """Successful open-connection calls."""
        return self._gateway.connections_opened

    @property
    def connected_count(self) -> int:
        """Bot websockets open now that a push may be given to."""
        return self._gateway.connected_count

    @property
    def deliveries(self) -> list[Delivery]:
        """Every CALLBACK frame sent, in order: msgId, frame id, connection id and attempt."""
        return list(self._gateway.ledger.deliveries)

    def deliveries_by_connection(self) -> dict[str, int]:
        """CALLBACK frames sent per connection id (the frames' `connectionId` header)."""
        return self._gateway.ledger.delivered_to()

    @property
    def redeliveries(self) -> int:
        """CALLBACK frames sent again because an earlier frame of the message was not ACKed."""
        return self._gateway.ledger.redeliveries

    @property
    def abandoned(self) -> list[str]:
        """msgIds given up on after the last redelivery was not ACKed either."""
        return list(self._gateway.ledger.abandoned)

    def ack_timer(self, frame_id: str) -> TimerState | None:
        """The ACK timer of a CALLBACK frame: "running", "cancelled" by its ACK, or "expired"."""
        return self._gateway.ledger.timer_state(frame_id)

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on a background thread; port 0 picks a free port."""
        self._thread.start()
        try:
            await self._thread.run(self._serve())
        except BaseException:
            await self._thread.stop()
            raise
        log.info("DingTalk simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close every websocket, stop the server and its thread; safe to call twice."""
        if not self._thread.running:
            return
        try:
            await self._thread.run(self._shutdown())
        finally:
            self._runner = None
            await self._thread.stop()

    async def __aenter__(self) -> DingTalkSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The root URL, e.g. `http://127.0.0.1:8123` (valid after `start`)."""
        if self._runner is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self._loopback_host}:{self._port}"

    @property
    def _loopback_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104

    @property
    def port(self) -> int:
        """The listening port (valid after `start`)."""
        if self._runner is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def chat_url(self) -> str:
        """The chat page's URL."""
        return self.base_url + "/"

    # ---- pushing to the bot -----------------------------------------------------------------

    async def send_text(
        self,
        text: str,
        *,
        msg_id: str | None = None,
        group: bool = False,
        sender_staff_id: str = "user001",
        sender_nick: str = "测试用户",
        conversation_id: str | None = None,
        webhook_ttl_s: float = 5400,
        at_bot: bool = True,
    ) -> dict[str, object]:
        """Send a user's text message to the connected bot; return the chatbot message dict.

        Raises ConnectionError when no bot is connected.
        """
        return await self._thread.run(
            self._users.deliver(
                text,
                msg_id=msg_id,
                group=group,
                sender_staff_id=sender_staff_id,
                sender_nick=sender_nick,
                conversation_id=conversation_id,
                webhook_ttl_s=webhook_ttl_s,
                at_bot=at_bot,
            )
        )

    async def send_picture(self, data: bytes, **options: Any) -> dict[str, object]:
        """Send a user's picture message (the bytes are kept for the download API); options as
        for ``send_text``. Return the chatbot message dict."""
        return await self._thread.run(
            self._users.deliver("", lambda: self._users.picture(data), **options)
        )

    async def send_rich_text(self, parts: list[str | bytes], **options: Any) -> dict[str, object]:
        """Send a richText message: ``str`` parts are text items, ``bytes`` parts pictures."""
        return await self._thread.run(
            self._users.deliver("", lambda: self._users.rich_text(parts), **options)
        )

    async def send_quote(
        self, text: str, replied: dict[str, Any] | None, **options: Any
    ) -> dict[str, object]:
        """Send a text quoting a message: ``replied`` becomes ``text.repliedMsg`` as given (see
        ``quote_of``/``quote_of_reply``); None sends ``isReplyMsg`` with only ``originalMsgId``,
        as DingTalk does for some quoted media."""
        return await self._thread.run(
            self._users.deliver(text, lambda: quote_fields(text, replied), **options)
        )

    def quote_of(self, message: dict[str, Any]) -> dict[str, Any]:
        """The ``repliedMsg`` of a text quoting ``message`` (one a simulated user sent)."""
        return replied_from_message(message)

    def quote_of_reply(self, reply: Reply) -> dict[str, Any]:
        """The ``repliedMsg`` of a text quoting one of the bot's replies."""
        return replied_from_reply(reply, self._files.add_remote)

    def picture(self, download_code: str) -> StoredPicture | None:
        """The picture kept for ``download_code``."""
        return self._files.picture(download_code)

    def expire_picture(self, download_code: str) -> None:
        """Make a picture's download code unknown to the download API (it expired)."""
        self._files.expire(download_code)

    @property
    def files(self) -> FileApi:
        """The download API: its calls and the GETs of its temporary URLs, for assertions."""
        return self._files

    async def send_message(self, message: dict[str, object]) -> str:
        """Send any chatbot message dict as a CALLBACK frame; return the frame's messageId."""
        return await self._thread.run(self._gateway.send_callback(dict(message)))

    async def send_frame(self, raw: str) -> None:
        """Send one raw websocket text frame, e.g. malformed JSON."""
        await self._thread.run(self._gateway.send_raw(raw))

    async def send_ping(self) -> str:
        """Send a SYSTEM `ping` frame; return its messageId."""
        return await self._thread.run(
            self._gateway.send_frame("SYSTEM", "ping", {"opaque": new_id()})
        )

    async def send_disconnect(self) -> str:
        """Send a SYSTEM `disconnect` frame; return its messageId."""
        return await self._thread.run(self._gateway.send_frame("SYSTEM", "disconnect", {}))

    async def drop_connections(self) -> None:
        """Cut every websocket abruptly, as a network failure would: no close frame."""
        await self._thread.run(self._gateway.drop())

    # ---- waiting ----------------------------------------------------------------------------

    # The wait_* methods take `timeout` (ASYNC109) because the bot's tests call them that way.

    async def wait_for_replies(self, count: int, timeout: float = 10.0) -> list[Reply]:  # noqa: ASYNC109
        """Wait until at least `count` replies are recorded; return them all."""

        def enough() -> list[Reply] | None:
            return list(self.replies) if len(self.replies) >= count else None

        return await self._thread.run(self._changes.wait_for(enough, timeout, f"{count} replies"))

    async def wait_connected(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until a bot websocket is connected."""
        await self._thread.run(self._changes.wait_for(self._connected, timeout, "a bot to connect"))

    async def wait_for_ack(self, frame_message_id: str, timeout: float = 10.0) -> JSONDict:  # noqa: ASYNC109
        """Wait for a frame's ACK; a chatbot `msgId` matches any frame that carried it."""

        def ack() -> JSONDict | None:
            return self._gateway.find_ack(frame_message_id)

        return await self._thread.run(
            self._changes.wait_for(ack, timeout, f"the ACK of {frame_message_id}")
        )

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until `condition()` holds, re-checked whenever the simulator records something,
        e.g. `await sim.wait_until(lambda: sim.connections_opened >= 2)`."""

        def holds() -> bool | None:
            return True if condition() else None

        await self._thread.run(self._changes.wait_for(holds, timeout, "the condition"))

    # ---- machinery on the simulator's loop --------------------------------------------------

    async def _serve(self) -> None:
        self._changes.arm()
        app = web.Application(
            middlewares=[site_guard(self.host, lambda: self._port)],
            # The chat page posts pictures as base64 in JSON: room for the largest one kept.
            client_max_size=self._files.max_picture_bytes * 4 // 3 + 65_536,
        )
        app.add_routes(self._gateway.routes())
        app.add_routes(self._api.routes())
        app.add_routes(self._files.routes())
        app.add_routes(self._cards.routes())
        app.add_routes(self._chat.routes())
        app.add_routes(self._media.routes())
        app.on_shutdown.append(self._close_websockets)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, self.host, self._port).start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        await self._serve_oapi()

    async def _serve_oapi(self) -> None:
        """The older API on a port of its own: a bot that sends an oapi call to the new API's
        origin (or the reverse) is answered 404, as DingTalk would."""
        app = web.Application(
            middlewares=[site_guard(self.host, lambda: self._oapi_port)],
            client_max_size=32 * 1024 * 1024,
        )
        app.add_routes(self._media.oapi_routes())
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, self.host, 0).start()
        self._oapi_port = int(runner.addresses[0][1])
        self._oapi_runner = runner

    async def _close_websockets(self, _app: web.Application) -> None:
        await self._gateway.close_all()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._oapi_runner is not None:
            await self._oapi_runner.cleanup()
            self._oapi_runner = None
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _connected(self) -> bool | None:
        return True if self._gateway.connected else None

    async def _deliver_web(self, fields: JSONDict) -> JSONDict:
        return await self._users.deliver(
            "",
            lambda: fields,
            msg_id=new_id("msg"),
            group=False,
            sender_staff_id=WEB_USER_ID,
            sender_nick=WEB_USER_NICK,
            conversation_id=WEB_CONVERSATION_ID,
            webhook_ttl_s=5400,
            at_bot=True,
        )

    def _on_reply(self, reply: Reply) -> None:
        self._chat.note_reply(reply)
        self._changes.bump()

    def _on_card(self, card: Card) -> None:
        self._chat.note_card(card)
        self._changes.bump()
