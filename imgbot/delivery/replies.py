"""Sending answers for a request: short sentences, and the picture in the configured style.

``Replies`` is what admission and the job's work call to speak: ``say`` for one sentence (never
raises; False when it could not be sent) and ``picture`` for the final answer, as REPLY_STYLE says,
falling back to Markdown when DingTalk refuses a native image; ``pictures`` sends several pictures
as one answer. Group replies @-mention the sender (``ImageRequest.mention``). With a media uploader
(DINGTALK_MEDIA_UPLOAD) a native image shows the preview uploaded to DingTalk's media store, by its
media id; when the upload is refused it shows the preview's link, as without one. In the card
style (``imgbot.delivery.card_replies``) ``progress`` makes the request's card and
``picture``/``pictures``/``answer`` change it; whatever the card cannot show is said as the
Markdown style says it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from imgbot.delivery import texts
from imgbot.delivery.card_replies import CardReplies
from imgbot.delivery.markdown import (
    EDIT_TITLE,
    TITLE,
    image_caption,
    image_reply,
    images_reply,
    recent_images_reply,
)
from imgbot.dingtalk.media import MediaUploader
from imgbot.dingtalk.sender import Message, ReplySender
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest, Published, RecentImage

log = logging.getLogger(__name__)
ReplyStyle = Literal["markdown", "image", "card"]


class Replies:
    """Answers requests through one reply sender, in one reply style."""

    def __init__(
        self,
        sender: ReplySender,
        style: ReplyStyle,
        *,
        cards: CardReplies | None = None,
        media: MediaUploader | None = None,
    ) -> None:
        self._sender = sender
        self._style = style
        self._cards = cards
        self._media = media

    @property
    def shows_queue_place(self) -> bool:
        """True when ``progress`` shows a waiting request's place in the queue (on its card)."""
        return self._cards is not None

    async def progress(self, request: ImageRequest, place: int | None = None) -> bool:
        """Tell the user the request was accepted: its card (saying its ``place`` in the queue
        when it waits), else the progress sentence."""
        if self._cards is not None and await self._cards.progress(request, place):
            return True
        return await self.say(request, texts.PROGRESS)

    async def started(self, request: ImageRequest) -> None:
        """The request's job started drawing: a card that said it waits now says 生成中…"""
        if self._cards is not None:
            await self._cards.started(request)

    async def answer(self, request: ImageRequest, text: str) -> bool:
        """The final answer as one sentence: on the request's card, else as ``say``."""
        if self._cards is not None and await self._cards.sentence(request, text):
            return True
        return await self.say(request, text)

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
        if self._cards is not None and await self._cards.picture(request, published, title):
            return "card"
        if self._style == "image":
            return await self._native(request, published, title)
        return await self._markdown(request, published, title)

    async def pictures(
        self, request: ImageRequest, pictures: Sequence[Published], note: str = ""
    ) -> str:
        """Send several pictures (or one with a ``note``: why fewer than asked) as one answer, as
        REPLY_STYLE says; return the channel of its last message.

        Markdown: one message with every preview and 查看原图 link. Native images: one image
        message per picture, then one Markdown caption with every link and the note; when
        DingTalk refuses the first image, the Markdown answer instead. Raises ``ReplyError``
        when the answer could not be sent.
        """
        title = texts.SEVERAL_TITLE.format(count=len(pictures)) if len(pictures) > 1 else TITLE
        if self._cards is not None and await self._cards.pictures(request, pictures, title, note):
            return "card"
        if self._style == "image" and await self._native_several(request, pictures):
            caption = images_reply(
                pictures, request.prompt, request.mention, title, note, previews=False
            )
            await self._sender.send(request, Message.markdown(title, caption))
            return "robot image"
        text = images_reply(pictures, request.prompt, request.mention, title, note)
        return await self._sender.send(request, Message.markdown(title, text))

    async def _native_several(self, request: ImageRequest, pictures: Sequence[Published]) -> bool:
        """Send each picture as a native image; False when the first was refused outright (the
        Markdown answer then carries them all)."""
        for number, published in enumerate(pictures, start=1):
            try:
                photo = await self._photo(request, published)
                await self._sender.send(request, Message.image(photo))
            except ReplyError as exc:
                if number == 1 and not exc.maybe_delivered:
                    log.warning(
                        "msg %s: native image refused (%s); sending Markdown", request.msg_id, exc
                    )
                    return False
                # Later ones: the caption's links still reach every picture.
                log.warning(
                    "msg %s: native image %d not confirmed (%s)", request.msg_id, number, exc
                )
        return True

    async def recent(self, request: ImageRequest, images: list[RecentImage]) -> str:
        """Send the sender's recent pictures as one Markdown message, whatever REPLY_STYLE says
        (one native image message holds one picture); return the channel it went through, or
        raise ``ReplyError``."""
        text = recent_images_reply(images, texts.MY_IMAGES_TITLE, request.mention)
        return await self._sender.send(request, Message.markdown(texts.MY_IMAGES_TITLE, text))

    async def _markdown(self, request: ImageRequest, published: Published, title: str) -> str:
        text = image_reply(published, request.prompt, request.mention, title)
        return await self._sender.send(request, Message.markdown(title, text))

    async def _native(self, request: ImageRequest, published: Published, title: str) -> str:
        try:
            await self._sender.send(request, Message.image(await self._photo(request, published)))
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

    async def _photo(self, request: ImageRequest, published: Published) -> str:
        """The native image's photoURL: the preview's media id when uploads are on and DingTalk
        takes it, else the preview's link."""
        preview = published.preview
        if self._media is None or preview is None:
            return published.preview_link.url
        try:
            return await self._media.upload_image(preview.data, preview.content_type)
        except ReplyError as exc:
            log.warning(
                "msg %s: media upload failed (%s); sending the image by its link",
                request.msg_id,
                exc,
            )
            return published.preview_link.url
