"""The simulated APIs a bot replies through: session webhooks, access tokens and robot sends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from imgbot.simulator.models import (
    Channel,
    Content,
    JSONDict,
    PayloadError,
    Reply,
    error_body,
    new_id,
    now_ms,
    parse_json_object,
    parse_robot_param,
    parse_webhook_body,
)

log = logging.getLogger(__name__)

TOKEN_TTL_S = 7200
MAX_BATCH_USERS = 20


@dataclass(frozen=True)
class _Session:
    conversation_id: str
    msg_id: str
    expires_at_ms: int


def _errcode(errcode: int | str, errmsg: str, status: int = 200) -> web.Response:
    # Webhooks report failures inside an HTTP 200 body, unlike api.dingtalk.com.
    return web.json_response({"errcode": errcode, "errmsg": errmsg}, status=status)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


class OpenApi:
    """Accepts the bot's replies, records each as a Reply and applies webhook fault scripts."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        robot_code: str,
        on_reply: Callable[[Reply], None],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.robot_code = robot_code
        self.webhook_script: list[object] = []
        self.replies: list[Reply] = []
        self.webhook_attempts = 0
        self.token_calls = 0
        self.refuse_image_messages = False
        self.slow_robot_answers_s = 0.0
        self._on_reply = on_reply
        self._sessions: dict[str, _Session] = {}
        self._tokens: dict[str, float] = {}
        self._o2o_conversations: dict[str, str] = {}

    def routes(self) -> list[web.RouteDef]:
        """The open APIs' HTTP routes."""
        return [
            web.post("/robot/sendBySession", self.session_webhook),
            web.post("/v1.0/oauth2/accessToken", self.access_token),
            web.post("/v1.0/robot/oToMessages/batchSend", self.robot_o2o),
            web.post("/v1.0/robot/groupMessages/send", self.robot_group),
        ]

    def open_session(self, conversation_id: str, msg_id: str, expires_at_ms: int) -> str:
        """Register a session webhook for one incoming message; return its token."""
        token = new_id()
        self._sessions[token] = _Session(conversation_id, msg_id, expires_at_ms)
        return token

    def note_one_to_one(self, staff_id: str, conversation_id: str) -> None:
        """Remember a user's one-to-one conversation, where batchSend messages to them land."""
        self._o2o_conversations[staff_id] = conversation_id

    def one_to_one_conversation(self, staff_id: str) -> str:
        """The one-to-one conversation of a user (their staff id when none was noted)."""
        return self._o2o_conversations.get(staff_id) or staff_id

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` is an access token this simulator gave and it has not expired."""
        expires = self._tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        """Make every access token given so far invalid, as DingTalk does when they expire."""
        self._tokens.clear()

    def _record(self, reply: Reply) -> None:
        self.replies.append(reply)
        log.info("recorded %s %s reply in %s", reply.channel, reply.msgtype, reply.conversation_id)
        self._on_reply(reply)

    async def session_webhook(self, request: web.Request) -> web.Response:
        """`POST /robot/sendBySession?session=…`: the reply path of one incoming message."""
        self.webhook_attempts += 1
        if self.webhook_script:
            scripted = await self._scripted_answer(self.webhook_script.pop(0))
            if scripted is not None:
                return scripted
        session = self._sessions.get(request.query.get("session", ""))
        if session is None or now_ms() >= session.expires_at_ms:
            return _errcode(300001, "session 不存在")
        try:
            content, at_user_ids, body = parse_webhook_body(await request.read())
        except PayloadError as exc:
            return _errcode(exc.code, exc.message)
        self._record(
            Reply(
                "webhook",
                session.conversation_id,
                content.msgtype,
                content.title,
                content.text,
                at_user_ids,
                session.msg_id,
                body,
            )
        )
        return _errcode(0, "ok")

    async def _scripted_answer(self, item: object) -> web.Response | None:
        """Apply one webhook_script item; None means "now answer normally"."""
        if isinstance(item, int) and not isinstance(item, bool):
            return _errcode(item, "系统繁忙", status=item)
        if isinstance(item, dict):
            return web.json_response(item)
        if (
            isinstance(item, tuple)
            and len(item) == 2
            and item[0] == "hang"
            and isinstance(item[1], int | float)
        ):
            # The reply is still recorded after the hang, even if the client gave up waiting:
            # a retrying bot then posts twice, as it would against the real DingTalk.
            await asyncio.sleep(item[1])
            return None
        log.error("invalid webhook_script item %r; answering HTTP 500", item)
        return _errcode(-1, "invalid webhook_script item", status=500)

    async def access_token(self, request: web.Request) -> web.Response:
        """`POST /v1.0/oauth2/accessToken`: trade appKey/appSecret for a 2-hour token."""
        self.token_calls += 1
        body = parse_json_object(await request.read())
        if (
            body is None
            or body.get("appKey") != self.client_id
            or body.get("appSecret") != self.client_secret
        ):
            return _error(401, "InvalidAuthentication", "appKey或appSecret不正确")
        token = new_id()
        self._tokens[token] = time.monotonic() + TOKEN_TTL_S
        return web.json_response({"accessToken": token, "expireIn": TOKEN_TTL_S})

    async def _robot_request(self, request: web.Request) -> tuple[JSONDict, Content] | web.Response:
        """Authenticate and validate a robot send call; return its body and content."""
        if not self.token_valid(request.headers.get("x-acs-dingtalk-access-token", "")):
            return _error(401, "InvalidAuthentication", "不合法的access_token")
        body = parse_json_object(await request.read())
        if body is None:
            return _error(400, "invalidParameter.param.invalid", "参数不合法")
        if body.get("robotCode") != self.robot_code:
            return _error(400, "invalidParameter.robotCode.invalid", "无效的robotCode")
        try:
            content = parse_robot_param(body.get("msgKey"), body.get("msgParam"))
        except PayloadError as exc:
            return _error(400, str(exc.code), exc.message)
        if content.msgtype == "image" and self.refuse_image_messages:
            # What DingTalk answers for a photoURL it cannot fetch (an intranet address).
            return _error(400, "invalidParameter.photoURL.invalid", "photoURL不合法")
        return body, content

    def _robot_reply(self, channel: Channel, cid: str, content: Content, body: JSONDict) -> None:
        self._record(Reply(channel, cid, content.msgtype, content.title, content.text, raw=body))

    async def robot_o2o(self, request: web.Request) -> web.Response:
        """`POST /v1.0/robot/oToMessages/batchSend`: one message to each of up to 20 users."""
        checked = await self._robot_request(request)
        if isinstance(checked, web.Response):
            return checked
        body, content = checked
        user_ids = body.get("userIds")
        if not isinstance(user_ids, list) or not 0 < len(user_ids) <= MAX_BATCH_USERS:
            return _error(400, "invalidParameter.userIds.empty", "userIds为空或超过20个")
        if not all(isinstance(user_id, str) and user_id for user_id in user_ids):
            return _error(400, "invalidParameter.param.invalid", "userIds不合法")
        for user_id in user_ids:
            conversation: str = self._o2o_conversations.get(user_id) or user_id
            self._robot_reply("robot_o2o", conversation, content, body)
        if self.slow_robot_answers_s:
            # Delivered, but the answer comes late: a client that gave up cannot know it arrived.
            await asyncio.sleep(self.slow_robot_answers_s)
        return web.json_response(
            {
                "processQueryKey": new_id(),
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
            }
        )

    async def robot_group(self, request: web.Request) -> web.Response:
        """`POST /v1.0/robot/groupMessages/send`: one message to a group conversation."""
        checked = await self._robot_request(request)
        if isinstance(checked, web.Response):
            return checked
        body, content = checked
        conversation = body.get("openConversationId")
        if not isinstance(conversation, str) or not conversation:
            return _error(400, "invalid.openConversationId", "无效的openConversationId")
        self._robot_reply("robot_group", conversation, content, body)
        return web.json_response({"processQueryKey": new_id()})
