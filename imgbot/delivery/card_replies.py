"""The card style's answers (REPLY_STYLE=card): one card per request that changes in place.

On acceptance the card says 生成中… (or, when the job waits for a slot, 排队中… with its place
in the queue, then 生成中… when this process starts it); the final answer turns the same card into
the picture (the preview, 查看原图 and the expiry) or into the one sentence of what went wrong.
Each method answers whether the card now shows it: False means the caller answers as the Markdown
style does (the card API refused or is paused, the chat has no card space, or a newer update
overtook the final one); a refusal's reason is logged by the card client. A call DingTalk may
have taken without answering (a timeout) counts as shown and is logged: an answer in Markdown as
well would be a second answer. The variables filled (all strings, README lists them for the
template):

    status    waiting | drawing | done | failed
    title     排队中… / 生成中… / 图片已生成 / 图片已修改 / 没能完成
    markdown  the body: the @-mention in groups, the prompt, 查看原图 and the expiry, or a sentence;
              with several pictures, the previews after the first as Markdown images
    image     the preview's URL (empty until done)
    original  the original's URL (empty until done)
    expiry    when the links stop working (empty until done)
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from imgbot.delivery import texts
from imgbot.delivery.markdown import MAX_MARKDOWN_BYTES, escape, expiry_text
from imgbot.dingtalk.cards import CardClient, CardRefused
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest, Published

log = logging.getLogger(__name__)
CardParams = dict[str, str]
_WAITING_KEPT = 4096
"""Cards this process made saying 排队中… and not yet changed (the oldest are forgotten first)."""


def waiting_card(request: ImageRequest, place: int) -> CardParams:
    """The card while the job waits for a slot: its place in the queue (1: next)."""
    text = texts.QUEUE_PLACE.format(place=max(1, place))
    return _params("waiting", texts.CARD_WAITING, _body(request, [text]))


def drawing_card(request: ImageRequest) -> CardParams:
    """The card while the picture is made."""
    return _params("drawing", texts.CARD_DRAWING, _body(request, [texts.PROGRESS]))


def picture_card(request: ImageRequest, published: Published, title: str) -> CardParams:
    """The card showing the picture."""
    link = published.original_link.url
    expiry = expiry_text(published.preview_link.expires_at)
    body = _body(request, [f"[查看原图]({link})", "", expiry])
    return _params(
        "done", title, body, image=published.preview_link.url, original=link, expiry=expiry
    )


def pictures_card(
    request: ImageRequest, pictures: Sequence[Published], title: str, note: str
) -> CardParams:
    """The card showing several pictures: the first as its image, the others' previews in its
    Markdown (as links only past ``MAX_MARKDOWN_BYTES``), every original a link."""
    first = pictures[0]
    expiry = expiry_text(first.preview_link.expires_at)
    head = _body(
        request, [*([note, ""] if note else []), f"[查看原图 1]({first.original_link.url})"]
    )
    used = len(head.encode()) + len(expiry.encode()) + 2
    lines: list[str] = []
    for number, published in enumerate(pictures[1:], start=2):
        link = f"[查看原图 {number}]({published.original_link.url})"
        block = ["", f"![图 {number}]({published.preview_link.url})", link]
        if used + len("\n".join(block).encode()) + 1 > MAX_MARKDOWN_BYTES:
            block = [link]
        used += len("\n".join(block).encode()) + 1
        lines += block
    body = "\n".join([head, *lines, "", expiry])
    return _params(
        "done",
        title,
        body,
        image=first.preview_link.url,
        original=first.original_link.url,
        expiry=expiry,
    )


def failed_card(request: ImageRequest, text: str) -> CardParams:
    """The card saying what went wrong."""
    return _params("failed", texts.CARD_FAILED, _body(request, [text]))


def _body(request: ImageRequest, tail: list[str]) -> str:
    # A card shows its text as written: the @-mention names the sender as DingTalk shows them.
    names = request.mentioned_names.values()
    lines = [" ".join(f"@{escape(name)}" for name in names)] if names else []
    if request.prompt:
        lines.append(f"> {escape(request.prompt)}")
    return "\n".join([*lines, "", *tail] if lines else tail)


def _params(
    status: str, title: str, markdown: str, *, image: str = "", original: str = "", expiry: str = ""
) -> CardParams:
    return {
        "status": status,
        "title": title,
        "markdown": markdown,
        "image": image,
        "original": original,
        "expiry": expiry,
    }


class CardReplies:
    """Shows a request's progress and answer on its card."""

    def __init__(self, client: CardClient) -> None:
        self._client = client
        self._waiting: OrderedDict[str, None] = OrderedDict()

    async def progress(self, request: ImageRequest, place: int | None = None) -> bool:
        """Create the card saying 生成中…, or 排队中… with ``place`` when the job waits; True
        when it was sent (or may have been)."""
        if not self._client.usable(request):
            return False
        params = drawing_card(request) if place is None else waiting_card(request, place)
        try:
            await self._client.create(request, params)
        except CardRefused:
            return False
        except ReplyError as exc:
            if not exc.maybe_delivered:
                log.warning("msg %s: card not created: %s", request.msg_id, exc)
                return False
            # It may be there: a progress sentence as well would be a second sign.
            log.warning("msg %s: card creation unconfirmed: %s", request.msg_id, exc)
        if place is not None:
            self._waiting[self._client.track_id(request)] = None
            while len(self._waiting) > _WAITING_KEPT:
                self._waiting.popitem(last=False)
        return True

    async def started(self, request: ImageRequest) -> None:
        """The job started: a card this process made saying 排队中… now says 生成中… (a card
        another replica made keeps its words until the answer)."""
        track = self._client.track_id(request)
        if track not in self._waiting:
            return
        del self._waiting[track]
        if not self._client.usable(request):
            return
        try:
            await self._client.update(request, drawing_card(request))
        except ReplyError as exc:
            log.info("msg %s: card not changed to drawing: %s", request.msg_id, exc)

    async def picture(self, request: ImageRequest, published: Published, title: str) -> bool:
        """Turn the card into the picture; False when the card could not show it."""
        return await self._final(request, picture_card(request, published, title))

    async def pictures(
        self, request: ImageRequest, pictures: Sequence[Published], title: str, note: str
    ) -> bool:
        """Turn the card into several pictures (or one with a ``note``); False when it could not
        show them."""
        return await self._final(request, pictures_card(request, pictures, title, note))

    async def sentence(self, request: ImageRequest, text: str) -> bool:
        """Turn the card into ``text`` (the final answer); False when it could not show it."""
        return await self._final(request, failed_card(request, text))

    async def _final(self, request: ImageRequest, params: CardParams) -> bool:
        if not self._client.usable(request):
            return False
        try:
            return await self._client.update(request, params, last=True)
        except CardRefused:
            return False  # the card client logged why
        except ReplyError as exc:
            if exc.maybe_delivered:
                # It may show the answer: Markdown as well would be a second answer.
                log.warning("msg %s: final card update unconfirmed: %s", request.msg_id, exc)
                return True
            log.warning("msg %s: card not updated (%s); answering in Markdown", request.msg_id, exc)
            return False
