"""Sending answers for a request: short sentences, and the picture in the configured style.

``Replies`` is what admission and the job's work call to speak: ``say`` for one sentence (never
raises; False when it could not be sent) and ``picture`` for the final answer, as REPLY_STYLE says,
falling back to Markdown when DingTalk refuses a native image. Group replies @-mention the sender
(``ImageRequest.mention``).
"""

from __future__ import annotations

import logging
from typing import Literal

from imgbot.delivery.markdown import (
    EDIT_TITLE,
    TITLE,
    image_caption,
    image_reply,
    recent_images_reply,
)
from imgbot.delivery.texts import MY_IMAGES_TITLE
from imgbot.dingtalk.sender import Message, ReplySender
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest, Published, RecentImage

log = logging.getLogger(__name__)
ReplyStyle = Literal["markdown", "image"]


class Replies:
    """Answers requests through one reply sender, in one reply style."""

    def __init__(self, sender: ReplySender, style: ReplyStyle) -> None:
        self._sender = sender
        self._style = style

    async def say(self, request: ImageRequest, text: str) -> bool:
        """Send a short text; False (logged) when it could not be sent."""
        if request.mention:
            text = f"{request.mention} {text}"
        try:
            await self._sender.send(request, Message.plain(text))
        except ReplyError as exc:
            log.warning("msg %s: could not send a text reply: %s", request.msg_id, exc)
            return False
        return True

    async def picture(self, request: ImageRequest, published: Published) -> str:
        """Send the picture as REPLY_STYLE says; return the channel it went through.

        A native image DingTalk refused falls back to Markdown; raises ``ReplyError`` when the
        answer could not be sent at all.
        """
        title = EDIT_TITLE if request.picture is not None else TITLE
        if self._style == "image":
            return await self._native(request, published, title)
        return await self._markdown(request, published, title)

    async def recent(self, request: ImageRequest, images: list[RecentImage]) -> str:
        """Send the sender's recent pictures as one Markdown message, whatever REPLY_STYLE says
        (one native image message holds one picture); return the channel it went through, or
        raise ``ReplyError``."""
        text = recent_images_reply(images, MY_IMAGES_TITLE, request.mention)
        return await self._sender.send(request, Message.markdown(MY_IMAGES_TITLE, text))

    async def _markdown(self, request: ImageRequest, published: Published, title: str) -> str:
        text = image_reply(published, request.prompt, request.mention, title)
        return await self._sender.send(request, Message.markdown(title, text))

    async def _native(self, request: ImageRequest, published: Published, title: str) -> str:
        try:
            await self._sender.send(request, Message.image(published.preview_link.url))
        except ReplyError as exc:
            if not exc.maybe_delivered:
                log.warning(
                    "msg %s: native image refused (%s); sending Markdown", request.msg_id, exc
                )
                return await self._markdown(request, published, title)
            # It may have arrived: another picture would be a duplicate; the caption follows.
            log.warning("msg %s: native image unconfirmed (%s)", request.msg_id, exc)
        caption = image_caption(published, request.prompt, request.mention, title)
        await self._sender.send(request, Message.markdown(title, caption))
        return "robot image"
