"""DingTalk Markdown for replies; user text is neutralised so it cannot form links or images."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from imgbot.delivery import texts
from imgbot.models import Published, RecentImage

BEIJING = timezone(timedelta(hours=8), "北京时间")
PROMPT_SHOWN_CHARS = 300
# Characters that build Markdown links, images, emphasis, headings and HTML, and those autolinkers
# look for (":" of a scheme, "@" of an e-mail address), become their full-width look-alikes: the
# text reads the same (NFKC folds each back) but no renderer parses it as markup or a link.
_FULLWIDTH = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "!": "！",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "|": "｜",
        "~": "～",
        "\\": "＼",
        "&": "＆",
        ":": "：",
        "@": "＠",
    }
)
_INVISIBLE = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
# Linkifiers find bare hosts ("www.x.cn", "x.com/a", "127.0.0.1") by the dot between labels, and
# scheme-less links by "//": both get full-width forms, a sentence's final "." stays as it is.
_LABEL_DOT = re.compile(r"\.(?=\w)")
_SLASHES = re.compile(r"//+")
TITLE = "图片已生成"
EDIT_TITLE = "图片已修改"
"""The heading of a reply carrying a user's picture changed as they asked."""


def escape(text: str, limit: int = PROMPT_SHOWN_CHARS) -> str:
    """Return ``text`` safe to place in DingTalk Markdown as plain words, on one line."""
    text = _INVISIBLE.sub("", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _LABEL_DOT.sub("．", text.translate(_FULLWIDTH))
    return _SLASHES.sub(lambda m: "／" * len(m.group()), text)


def expiry_text(expires_at: datetime | None) -> str:
    """Say when a link stops working, in Beijing time."""
    if expires_at is None:
        return "链接长期有效"
    return f"链接有效期至 {expires_at.astimezone(BEIJING):%Y-%m-%d %H:%M}（北京时间）"


def image_reply(
    published: Published, prompt: str | None, mention: str = "", title: str = TITLE
) -> str:
    """The Markdown body of the reply carrying a generated or published image."""
    image = [f"![预览]({published.preview_link.url})", ""]
    return _reply(published, prompt, mention, image, title)


def image_caption(
    published: Published, prompt: str | None, mention: str = "", title: str = TITLE
) -> str:
    """The short Markdown that follows a native image message: prompt, original, expiry."""
    return _reply(published, prompt, mention, [], title)


def _reply(
    published: Published, prompt: str | None, mention: str, image: list[str], title: str
) -> str:
    lines = [f"#### {title}"]
    if mention:
        lines.append(mention)
    if prompt:
        lines.append(f"> {escape(prompt)}")
    lines += [
        "",
        *image,
        f"[查看原图]({published.original_link.url})",
        "",
        expiry_text(published.preview_link.expires_at),
    ]
    return "\n".join(lines)


MAX_MARKDOWN_BYTES = 14_000
"""The most a reply's Markdown may take: DingTalk takes a group message's msgParam up to 15,000
bytes (DINGTALK.md) and a reply body up to 20,000; the title and JSON around it fit the rest."""


def images_reply(
    pictures: Sequence[Published],
    prompt: str | None,
    mention: str = "",
    title: str = TITLE,
    note: str = "",
    *,
    previews: bool = True,
) -> str:
    """The Markdown body of one answer carrying several pictures: each preview (unless
    ``previews`` is False: the native images went before) and its 查看原图 link, ``note`` saying
    why there are fewer than asked.

    Within ``MAX_MARKDOWN_BYTES``: pictures that no longer fit with their preview keep their link
    only (the original shows when tapped), and those past even that are left out and counted.
    """
    head = [f"#### {title}"]
    if mention:
        head.append(mention)
    if prompt:
        head.append(f"> {escape(prompt)}")
    if note:
        head.append(note)
    tail = ["", expiry_text(pictures[0].preview_link.expires_at)] if pictures else []
    used = len("\n".join(head + tail).encode()) + 64  # room for the line of pictures left out
    body: list[str] = []
    left_out = 0
    for number, published in enumerate(pictures, start=1):
        link = f"[查看原图 {number}]({published.original_link.url})"
        block = (
            ["", f"![图 {number}]({published.preview_link.url})", link] if previews else ["", link]
        )
        size = len("\n".join(block).encode()) + 1
        if size > MAX_MARKDOWN_BYTES - used and previews:
            block = ["", link]
            size = len("\n".join(block).encode()) + 1
        if left_out or size > MAX_MARKDOWN_BYTES - used:
            left_out += 1
            continue
        body += block
        used += size
    if left_out:
        body += ["", texts.LINKS_LEFT_OUT.format(count=left_out)]
    return "\n".join(head + body + tail)


RECENT_PROMPT_CHARS = 40
"""The start of each prompt 「我的图片」 shows beside its picture."""


def recent_images_reply(images: list[RecentImage], title: str, mention: str = "") -> str:
    """The Markdown body listing a sender's recent pictures: for each, newest first, its prompt
    and time, the preview, the original's link and the links' expiry."""
    lines = [f"#### {title}"]
    if mention:
        lines.append(mention)
    for number, image in enumerate(images, 1):
        made = image.made_at.astimezone(BEIJING)
        said = escape(image.prompt, RECENT_PROMPT_CHARS) or "（无描述）"
        lines += [
            "",
            f"**{number}.** {said}（{made:%m-%d %H:%M}）",
            "",
            f"![预览]({image.published.preview_link.url})",
            "",
            f"[查看原图]({image.published.original_link.url}) · "
            + expiry_text(image.published.preview_link.expires_at),
        ]
    return "\n".join(lines)
