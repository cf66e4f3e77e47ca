"""DingTalk Markdown for replies; user text is neutralised so it cannot form links or images."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

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
