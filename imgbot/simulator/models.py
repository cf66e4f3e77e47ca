"""Values the DingTalk simulator records, and the pure payload rules it applies to them."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

BOT_TOPIC = "/v1.0/im/bot/messages/get"
MAX_WEBHOOK_BYTES = 20_000
# groupMessages/send documents msgParam as "no longer than 15,000 bytes"
MAX_MSG_PARAM_BYTES = 15_000
WEB_CONVERSATION_ID = "web-chat"
WEB_USER_ID = "web-user"
WEB_USER_NICK = "网页用户"
CHATBOT_USER_ID = "$:LWCP_v1:$simulated-chatbot"
CORP_ID = "ding-sim-corp"
MEDIA_PATH = "/chat/media/"
"""Where the chat page finds pictures uploaded to the media store, by media id."""

Channel = Literal["webhook", "robot_o2o", "robot_group"]
JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One message the bot got accepted, through a session webhook or a robot send API."""

    channel: Channel
    conversation_id: str
    msgtype: str
    title: str | None
    text: str
    at_user_ids: tuple[str, ...] = ()
    msg_id: str | None = None
    raw: JSONDict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Content:
    """The displayable part of a message: its type, optional Markdown title and body text."""

    msgtype: str
    title: str | None
    text: str


class PayloadError(ValueError):
    """A request body DingTalk would refuse; `code` is its errcode (webhooks) or code string."""

    def __init__(self, code: int | str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def now_ms() -> int:
    """Return the current time as epoch milliseconds, DingTalk's timestamp unit."""
    return int(time.time() * 1000)


def new_id(prefix: str = "") -> str:
    """Return a random identifier shaped like DingTalk's opaque ids."""
    return prefix + uuid.uuid4().hex


def parse_json_object(raw: bytes) -> JSONDict | None:
    """Parse a request body that must be a JSON object; None when it is anything else."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def error_body(code: str, message: str) -> JSONDict:
    """The error body of DingTalk's new-style APIs (api.dingtalk.com), sent with an HTTP error."""
    return {"code": code, "message": message, "requestid": new_id()}


def parse_webhook_body(raw: bytes) -> tuple[Content, tuple[str, ...], JSONDict]:
    """Validate a session webhook body; return its content, @-mentioned ids and parsed JSON."""
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise PayloadError(460101, "message too long, exceed 20000 bytes")
    body = parse_json_object(raw)
    if body is None:
        raise PayloadError(40035, "缺少参数 json")
    content = _webhook_content(body)
    at = body.get("at", {})
    at_ids = at.get("atUserIds", []) if isinstance(at, dict) else None
    if not isinstance(at_ids, list) or not all(isinstance(i, str) for i in at_ids):
        raise PayloadError(40035, "参数 at.atUserIds 不合法")
    return content, tuple(at_ids), body


def _webhook_content(body: JSONDict) -> Content:
    msgtype = body.get("msgtype")
    if msgtype == "text":
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            raise PayloadError(40035, "缺少参数 text.content")
        return Content("text", None, content)
    if msgtype == "markdown":
        markdown = body.get("markdown")
        if not isinstance(markdown, dict):
            raise PayloadError(40035, "缺少参数 markdown")
        title, text = markdown.get("title"), markdown.get("text")
        if not isinstance(title, str) or not title or not isinstance(text, str) or not text:
            raise PayloadError(40035, "缺少参数 markdown.title 或 markdown.text")
        return Content("markdown", title, text)
    raise PayloadError(40035, f"不支持的消息类型 msgtype={msgtype!r}")


def parse_robot_param(msg_key: object, msg_param: object) -> Content:
    """Validate a robot send API's `msgKey` and JSON-string `msgParam` into content."""
    if msg_key not in ("sampleText", "sampleMarkdown", "sampleImageMsg"):
        raise PayloadError("invalidParameter.msgKey.invalid", "msgKey不合法")
    if not isinstance(msg_param, str):
        raise PayloadError("invalidParameter.msgParam.invalid", "msgParam必须是JSON格式")
    if len(msg_param.encode()) > MAX_MSG_PARAM_BYTES:
        raise PayloadError("invalidParameter.msgParam.invalid", "msgParam长度超过15000字节")
    param = parse_json_object(msg_param.encode())
    if param is None:
        raise PayloadError("invalidParameter.msgParam.invalid", "msgParam必须是JSON格式")
    if msg_key == "sampleText":
        content = param.get("content")
        if isinstance(content, str) and content:
            return Content("text", None, content)
    elif msg_key == "sampleImageMsg":
        url = param.get("photoURL")
        if isinstance(url, str) and (url.startswith(("http://", "https://")) or is_media_id(url)):
            return Content("image", None, url)
    else:
        title, text = param.get("title"), param.get("text")
        if isinstance(title, str) and isinstance(text, str) and text:
            return Content("markdown", title, text)
    raise PayloadError("invalidParameter.msgParam.invalid", f"msgParam缺少{msg_key}所需的字段")


def is_media_id(photo: str) -> bool:
    """Whether a ``photoURL`` names a picture in the media store (``@…``) rather than a link."""
    return photo.startswith("@") and len(photo) > 1


def media_path(media_id: str) -> str:
    """Where the simulator serves the picture uploaded as ``media_id`` (beside the chat page)."""
    return MEDIA_PATH + quote(media_id, safe="@")


def chatbot_message(
    *,
    text: str,
    msg_id: str,
    group: bool,
    sender_staff_id: str,
    sender_nick: str,
    conversation_id: str,
    session_webhook: str,
    expires_at_ms: int,
    robot_code: str,
    at_bot: bool,
) -> JSONDict:
    """Build the chatbot message dict DingTalk puts in a bot CALLBACK frame's `data`."""
    message: JSONDict = {
        "conversationId": conversation_id,
        "chatbotCorpId": CORP_ID,
        "chatbotUserId": CHATBOT_USER_ID,
        "msgId": msg_id,
        "senderNick": sender_nick,
        "isAdmin": True,
        "senderStaffId": sender_staff_id,
        "sessionWebhookExpiredTime": expires_at_ms,
        "createAt": now_ms(),
        "senderCorpId": CORP_ID,
        "conversationType": "2" if group else "1",
        "senderId": f"$:LWCP_v1:${sender_staff_id}",
        "sessionWebhook": session_webhook,
        "robotCode": robot_code,
        "msgtype": "text",
        "text": {"content": text},
    }
    if group:
        # DingTalk strips the "@bot" mention but keeps the blank that followed it.
        message["text"] = {"content": " " + text if at_bot else text}
        message["isInAtList"] = at_bot
        message["conversationTitle"] = "模拟群聊"
        message["atUsers"] = [{"dingtalkId": CHATBOT_USER_ID}] if at_bot else []
    return message


def stream_frame(
    frame_type: str, topic: str, data: JSONDict, *, app_id: str, connection_id: str
) -> JSONDict:
    """Build one Stream-protocol frame; `data` travels as a JSON string, as DingTalk sends it."""
    headers = {
        "appId": app_id,
        "connectionId": connection_id,
        "contentType": "application/json",
        "messageId": new_id(),
        "time": str(now_ms()),
        "topic": topic,
    }
    return {
        "specVersion": "1.0",
        "type": frame_type,
        "headers": headers,
        "data": json.dumps(data, ensure_ascii=False),
    }
