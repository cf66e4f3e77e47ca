"""Inbound DingTalk chatbot payloads, validated into our own model at the edge.

DingTalk pushes a JSON object per chat message (topic ``/v1.0/im/bot/messages/get``). Only the
fields imgbot uses are read; anything malformed (no ``msgId``, ``text`` not an object, a webhook
expiry that is not a number, a richText list longer than any person's message) raises
``MalformedMessage`` and the frame is ignored. A picture, a richText with a picture, and a text
quoting a picture become a request carrying a ``PictureRef`` (see ``quoted`` for the shapes);
other message kinds are kept by name so that the responder can answer them clearly. A quote whose
content cannot be read (only its id, or JSON nested past ``bounded_json.MAX_JSON_DEPTH``) is marked
``quote_unreadable`` and answered with a hint. ``parse_request`` returns a request or raises
``MalformedMessage``; should reading the words fail unexpectedly all the same (a bug), the stream
handler answers through ``unreadable_request``: the message is acknowledged and its sender told
in one sentence, never left waiting on a redelivery.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imgbot.chat.aspect import aspect_of
from imgbot.chat.picture_count import picture_count
from imgbot.chat.prompts import clean_prompt
from imgbot.chat.quoted import (
    QuoteTooDeep,
    QuoteTooLarge,
    download_code,
    quoted_picture,
    rich_text,
)
from imgbot.errors import ImgbotError
from imgbot.models import Aspect, ImageRequest, PictureRef

_MAX_ID = 256
"""DingTalk's ids are well under 100 characters; longer ones are not DingTalk's."""


class MalformedMessage(ImgbotError):
    """The payload is not a chatbot message imgbot can answer."""


class _Text(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    content: str = ""
    is_reply: bool = Field(False, alias="isReplyMsg")
    replied: Any = Field(None, alias="repliedMsg")


class ChatbotPayload(BaseModel):
    """The fields of a DingTalk chatbot message that imgbot reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    msg_id: str = Field(alias="msgId", min_length=1, max_length=_MAX_ID)
    msgtype: str = "unknown"
    text: _Text | None = None
    content: Any = None
    """``picture`` and ``richText`` messages: read by hand, every shape is tolerated."""
    conversation_id: str = Field("", alias="conversationId", max_length=_MAX_ID)
    conversation_type: str = Field("1", alias="conversationType")
    sender_id: str = Field("", alias="senderId", max_length=_MAX_ID)
    sender_staff_id: str = Field("", alias="senderStaffId", max_length=_MAX_ID)
    sender_nick: str = Field("", alias="senderNick", max_length=_MAX_ID)
    session_webhook: str = Field("", alias="sessionWebhook", max_length=2048)
    session_webhook_expired_time: int = Field(0, alias="sessionWebhookExpiredTime")
    robot_code: str = Field("", alias="robotCode", max_length=_MAX_ID)


def parse_request(data: Any) -> ImageRequest:
    """Turn a chatbot payload into an ``ImageRequest``, or raise ``MalformedMessage``."""
    if not isinstance(data, dict):
        raise MalformedMessage(f"payload is a {type(data).__name__}, not an object")
    try:
        payload = ChatbotPayload.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "?" for e in exc.errors())
        raise MalformedMessage(f"invalid field(s): {fields}") from None
    try:
        prompt, picture, unreadable = _what_is_asked(payload)
    except QuoteTooLarge as exc:
        raise MalformedMessage(str(exc)) from None
    prompt = clean_prompt(prompt)
    return _addressed(
        payload,
        prompt=prompt,
        message_type=payload.msgtype or "unknown",
        picture=picture,
        quote_unreadable=unreadable,
        # An edit makes one picture: the words describe the change, not how many.
        asked=picture_count(prompt) if picture is None else 1,
        aspect=aspect_of(prompt),
    )


UNREADABLE = "unreadable"
"""The ``message_type`` of a message whose reading failed unexpectedly (``unreadable_request``)."""


def unreadable_request(data: Any) -> ImageRequest | None:
    """A request that only lets its sender be answered (``message_type`` ``UNREADABLE``, no
    prompt), for a payload ``parse_request`` failed on unexpectedly; None when even the
    addressing fields cannot be read."""
    try:
        payload = ChatbotPayload.model_validate(data)
    except ValidationError:
        return None
    return _addressed(payload, prompt="", message_type=UNREADABLE)


def _addressed(
    payload: ChatbotPayload,
    *,
    prompt: str,
    message_type: str,
    picture: PictureRef | None = None,
    quote_unreadable: bool = False,
    asked: int = 1,
    aspect: Aspect | None = None,
) -> ImageRequest:
    """A request from ``payload``'s addressing fields and what was read of its content."""
    return ImageRequest(
        prompt=prompt,
        msg_id=payload.msg_id,
        conversation_id=payload.conversation_id,
        conversation_type=payload.conversation_type or "1",
        sender_id=payload.sender_id,
        sender_staff_id=payload.sender_staff_id,
        sender_nick=payload.sender_nick,
        session_webhook=payload.session_webhook,
        webhook_expires_at_ms=payload.session_webhook_expired_time,
        robot_code=payload.robot_code,
        message_type=message_type,
        picture=picture,
        quote_unreadable=quote_unreadable,
        asked=asked,
        aspect=aspect,
    )


def _what_is_asked(payload: ChatbotPayload) -> tuple[str, PictureRef | None, bool]:
    """The instruction, the picture it applies to, and whether a quote could not be read."""
    if payload.msgtype == "picture":
        code = download_code(payload.content)
        return "", PictureRef(download_code=code) if code else None, False
    if payload.msgtype == "richText":
        items = payload.content.get("richText") if isinstance(payload.content, dict) else None
        text, picture = rich_text(items)
        return text, picture, False
    if payload.msgtype != "text" or payload.text is None:
        return "", None, False
    said = payload.text
    if not said.is_reply:
        return said.content, None, False
    picture, unreadable = _quoted(said.replied)
    return said.content, picture, unreadable


def _quoted(replied: object) -> tuple[PictureRef | None, bool]:
    """The picture a quote shows, and whether the quote's content could not be read."""
    if not isinstance(replied, dict):
        # DingTalk sent only the quoted message's id (it does so for rich media).
        return None, True
    try:
        picture = quoted_picture(replied)
    except QuoteTooDeep:
        return None, True  # answered like a quote whose content was not given
    shows_picture = replied.get("msgType") in ("picture", "unknownMsgType")
    return picture, picture is None and shows_picture
