"""What simulated users send: text, picture, richText and quoting messages, pushed to the bot.

The message bodies follow what DingTalk sends (see imgbot's README, "Editing pictures users send
or quote"): a picture's content holds both ``downloadCode`` and ``pictureDownloadCode``; quotes
are texts with ``isReplyMsg`` and ``repliedMsg``, whose richText items use ``msgType``.
"""

from __future__ import annotations

from collections.abc import Callable

from imgbot.simulator.files import FileApi
from imgbot.simulator.gateway import StreamGateway
from imgbot.simulator.models import (
    CHATBOT_USER_ID,
    JSONDict,
    Reply,
    chatbot_message,
    new_id,
    now_ms,
)
from imgbot.simulator.openapi import OpenApi

GROUP_CONVERSATION_ID = "cid-group-sim"


def picture_fields(download_code: str, picture_download_code: str) -> JSONDict:
    """The fields of a ``picture`` chatbot message (they replace ``text``)."""
    content = {"pictureDownloadCode": picture_download_code, "downloadCode": download_code}
    return {"msgtype": "picture", "content": content}


def rich_text_fields(items: list[JSONDict]) -> JSONDict:
    """The fields of a ``richText`` chatbot message; items are ``{"text"}`` or picture items."""
    return {"msgtype": "richText", "content": {"richText": items}}


def picture_item(download_code: str, picture_download_code: str) -> JSONDict:
    """One picture of a richText list."""
    return {
        "pictureDownloadCode": picture_download_code,
        "downloadCode": download_code,
        "type": "picture",
    }


def replied_from_message(message: JSONDict) -> JSONDict:
    """The ``repliedMsg`` DingTalk puts in a text quoting ``message`` (a user's chatbot message).

    Quoted richText items use ``msgType``/``content``/``downloadCode`` (not the top-level shape).
    """
    quoted: JSONDict = {
        "msgId": message.get("msgId", ""),
        "senderId": message.get("senderId", ""),
        "createdAt": message.get("createAt", now_ms()),
    }
    kind = message.get("msgtype")
    content = message.get("content")
    content = content if isinstance(content, dict) else {}
    if kind == "picture":
        return {
            **quoted,
            "msgType": "picture",
            "content": {"downloadCode": content["downloadCode"]},
        }
    if kind == "richText":
        items = []
        for item in content.get("richText", []):
            if "downloadCode" in item:
                items.append({"msgType": "picture", "downloadCode": item["downloadCode"]})
            else:
                items.append({"msgType": "text", "content": item.get("text", "")})
        return {**quoted, "msgType": "richText", "content": {"richText": items}}
    text = (
        message.get("text", {}).get("content", "") if isinstance(message.get("text"), dict) else ""
    )
    return {**quoted, "msgType": "text", "content": {"text": text}}


def replied_from_reply(reply: Reply, picture_code: Callable[[str], str]) -> JSONDict:
    """The ``repliedMsg`` of a text quoting one of the bot's replies.

    No DingTalk document shows it; this follows what connectors found: a Markdown reply is quoted
    with its text (``msgType: "markdown"``), a native image as a picture with a download code
    (``picture_code(url)`` makes one that answers with the image's URL).
    """
    quoted: JSONDict = {"msgId": new_id("msg"), "senderId": CHATBOT_USER_ID}
    if reply.msgtype == "image":
        code = picture_code(reply.text)
        return {**quoted, "msgType": "picture", "content": {"downloadCode": code}}
    if reply.msgtype == "markdown":
        return {
            **quoted,
            "msgType": "markdown",
            "content": {"title": reply.title, "text": reply.text},
        }
    return {**quoted, "msgType": "text", "content": {"text": reply.text}}


def quote_fields(text: str, replied: JSONDict | None) -> JSONDict:
    """The fields of a text quoting ``replied``; None gives only ``originalMsgId``, as DingTalk
    sends for some quoted media."""
    said: JSONDict = {"content": text, "isReplyMsg": True}
    if replied is None:
        return {"msgtype": "text", "text": said, "originalMsgId": new_id("msg")}
    return {"msgtype": "text", "text": {**said, "repliedMsg": replied}}


class UserMessages:
    """Builds the chatbot message of each user message and pushes it as a CALLBACK frame."""

    def __init__(
        self,
        gateway: StreamGateway,
        api: OpenApi,
        files: FileApi,
        *,
        base_url: Callable[[], str],
        note: Callable[[str, JSONDict], None],
    ) -> None:
        self._gateway = gateway
        self._api = api
        self._files = files
        self._base_url = base_url
        self._note = note

    def picture(self, data: bytes) -> JSONDict:
        """The fields of a picture message; the bytes are kept for the download API."""
        stored = self._files.add(data)
        return picture_fields(stored.download_code, stored.picture_download_code)

    def rich_text(self, parts: list[str | bytes]) -> JSONDict:
        """The fields of a richText message: ``str`` parts are text, ``bytes`` parts pictures."""
        items: list[JSONDict] = []
        for part in parts:
            if isinstance(part, bytes):
                stored = self._files.add(part)
                items.append(picture_item(stored.download_code, stored.picture_download_code))
            else:
                items.append({"text": part})
        return rich_text_fields(items)

    async def deliver(
        self,
        text: str,
        fields: Callable[[], JSONDict] | None = None,
        *,
        msg_id: str | None = None,
        group: bool = False,
        sender_staff_id: str = "user001",
        sender_nick: str = "测试用户",
        conversation_id: str | None = None,
        webhook_ttl_s: float = 5400,
        at_bot: bool = True,
    ) -> JSONDict:
        """Push one user message: a text, or the fields ``fields()`` builds (called only once a
        bot is connected, so nothing is kept for a message that is not sent)."""
        self._gateway.ensure_connected()
        extra = fields() if fields is not None else {}
        msg_id = msg_id or new_id("msg")
        conversation_id = conversation_id or (
            GROUP_CONVERSATION_ID if group else f"cid-o2o-{sender_staff_id}"
        )
        if not group:
            self._api.note_one_to_one(sender_staff_id, conversation_id)
        expires_at_ms = now_ms() + int(webhook_ttl_s * 1000)
        token = self._api.open_session(conversation_id, msg_id, expires_at_ms)
        message = chatbot_message(
            text=text,
            msg_id=msg_id,
            group=group,
            sender_staff_id=sender_staff_id,
            sender_nick=sender_nick,
            conversation_id=conversation_id,
            session_webhook=f"{self._base_url()}/robot/sendBySession?session={token}",
            expires_at_ms=expires_at_ms,
            robot_code=self._api.robot_code,
            at_bot=at_bot,
        )
        if extra:
            message.pop("text", None)
            message.update(extra)
        said = extra.get("text")
        if group and at_bot and isinstance(said, dict):
            # As for plain texts: DingTalk keeps the blank that followed the stripped "@bot".
            message["text"] = {**said, "content": " " + str(said.get("content", ""))}
        self._note(conversation_id, message)
        await self._gateway.send_callback(message)
        return message
