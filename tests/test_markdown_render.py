"""Replies rendered by real Markdown engines (linkify, GFM autolinks) hold no links but ours."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from markdown_it import MarkdownIt

from imgbot.delivery.markdown import escape, image_reply
from imgbot.models import Link, Published
from tests.test_reliability import TEXTS

PREVIEW = "https://img.example.com/b/imagegen/k.preview.jpg?X-Amz-Signature=ab&X-Amz-Expires=60"
ORIGINAL = "https://img.example.com/b/imagegen/k.png?X-Amz-Signature=cd&X-Amz-Expires=60"
PUBLISHED = Published(
    "imagegen/k.png",
    "imagegen/k.preview.jpg",
    Link(PREVIEW, datetime(2026, 12, 5, tzinfo=UTC)),
    Link(ORIGINAL, datetime(2026, 12, 5, tzinfo=UTC)),
)

# Every way a renderer may turn plain words into a link: each must stay words.
AUTOLINKS = [
    "www.evil.example/auto",
    "WWW.EVIL.COM",
    "画一只猫 www.evil.com",
    "a@evil.example",
    "a.b+c@evil.com",
    "mailto:a@evil.com",
    "xmpp:a@evil.com/res",
    "evil.example/x",
    "evil.com",
    "evil.cn/a.png",
    "sub.evil.com:8080/path?q=1#f",
    "пример.рф",
    "evil.xn--p1ai",
    "127.0.0.1",
    "127.0.0.1:9000/imgbot/",
    "http://evil.example",
    "HTTPS://EVIL.COM/a.png",
    "画猫http://evil.com",
    "猫https://evil.com/a.png猫",
    "http：//evil.example",
    "http：//localhost/x",
    "//evil.com/x",
    "//localhost:9000/x",
    "ftp://evil.com/f",
    "http://[::1]:9000/",
    "http://user:pass@evil.com/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "<https://evil.com>",
    "<a@evil.com>",
    "[x][1]\n\n[1]: http://evil.com",
    "![x][1]\n\n[1]: https://evil.com/a.png",
    "&#91;x&#93;&#40;http://evil.com&#41;",
    "[点我](<http://evil.com>)",
    "\\[x\\](http://evil.com)",
    "<a href='http://evil.com'>x</a>",
    "evil．com/x 和 evil。com",
]
# The hostile texts the bot's corpus sends, the escaping tests' prompts, and the forms above.
CORPUS = [text for _, text, _ in TEXTS] + [
    "<img src=http://evil.example/a.png>",
    "画一只猫 ![x](https://evil.example/a.png) 和 [链接](https://evil.example)",
    "画猫 ![x](http://evil.example/a.png) [点我](http://evil.example)",
    *AUTOLINKS,
]


class _Elements(HTMLParser):
    """Collects every start tag and the URL attributes of the rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src", "srcset", "action", "formaction", "background"):
                self.urls.append((tag, name, value or ""))


def _markdown_it(text: str) -> str:
    # linkify-it finds bare domains, e-mail addresses and scheme-less "//host" links.
    engine = MarkdownIt("commonmark", {"linkify": True, "html": True})
    return engine.enable(["linkify", "table", "strikethrough"]).render(text)


def _gfm(text: str) -> str:
    # cmark-gfm's autolink extension links www., http(s)://, ftp://, mailto:, xmpp: and e-mail.
    return cmarkgfm.markdown_to_html_with_extensions(
        text,
        options=Options.CMARK_OPT_UNSAFE,
        extensions=["autolink", "table", "strikethrough", "tasklist"],
    )


RENDERERS: dict[str, Callable[[str], str]] = {"markdown-it+linkify": _markdown_it, "gfm": _gfm}


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("prompt", CORPUS)
def test_rendered_reply_links_only_to_our_objects(renderer: str, prompt: str) -> None:
    """Whatever the prompt, the rendered reply has one image (preview) and one link (original)."""
    html = RENDERERS[renderer](image_reply(PUBLISHED, prompt))
    elements = _Elements()
    elements.feed(html)
    assert elements.urls == [("img", "src", PREVIEW), ("a", "href", ORIGINAL)], html
    assert set(elements.tags) <= {"h4", "blockquote", "p", "img", "a"}, html


def test_corpus_is_large() -> None:
    """The corpus holds the bot's hostile texts and at least forty prompts in all."""
    assert len(CORPUS) >= 40 and len(AUTOLINKS) >= 30


@pytest.mark.parametrize("prompt", AUTOLINKS)
def test_neutralised_text_reads_the_same(prompt: str) -> None:
    """Only look-alike characters replace markup: compatibility folding gives the words back."""
    shown = escape(prompt)
    assert "\u200b" not in shown
    folded = " ".join(unicodedata.normalize("NFKC", prompt).split())
    assert unicodedata.normalize("NFKC", shown) == folded
