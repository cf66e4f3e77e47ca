"""Offline link making: presigned URLs for MinIO and COS, PUBLIC_BASE_URL links, and Markdown."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from imgbot.config.settings import load_settings
from imgbot.delivery.markdown import escape, image_reply
from imgbot.models import Link, Published
from imgbot.presign import Presigner
from tests.conftest import CliRunner

KEY = "imagegen/2026/11/28/abcdefghijklmnopqrstuvwxyz.preview.jpg"


def test_cos_url_offline(monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner) -> None:
    """COS preset: virtual-host URL on cos.<region>.myqcloud.com with the region in the scope."""
    for key, value in {
        "S3_PROVIDER": "cos",
        "S3_REGION": "ap-guangzhou",
        "S3_BUCKET": "imgbot-1250000000",
        "S3_ACCESS_KEY": "AKIDcos",
        "S3_SECRET_KEY": "cos-secret",
    }.items():
        monkeypatch.setenv(key, value)
    done = cli_here("url", KEY, "--ttl", "600")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"https://imgbot-1250000000.cos.ap-guangzhou.myqcloud.com/{KEY}?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "/ap-guangzhou/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert query["X-Amz-Expires"] == ["600"]
    assert "cos-secret" not in url


def test_ttl_flag_clamped_to_retention_and_sigv4() -> None:
    """--ttl never makes a link outlive its object (retention) nor SigV4's 604800 s."""
    settings = load_settings(s3_access_key="a", s3_secret_key="b")
    url = Presigner.from_settings(settings).link(KEY, ttl=10**7).url
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["604800"]
    settings = load_settings(s3_access_key="a", s3_secret_key="b", image_retention_days=1)
    url = Presigner.from_settings(settings).link(KEY, ttl=604800).url
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["86400"]


def test_default_ttl_is_retention() -> None:
    """Without PRESIGN_TTL_SECONDS, links live as long as the objects (retention days)."""
    settings = load_settings(s3_access_key="a", s3_secret_key="b", image_retention_days=3)
    signed_at = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
    link = Presigner.from_settings(settings).with_clock(lambda: signed_at).link(KEY)
    query = parse_qs(urlsplit(link.url).query)
    assert query["X-Amz-Expires"] == [str(3 * 86400)]
    assert query["X-Amz-Date"] == ["20261128T093015Z"]
    assert link.expires_at == signed_at + timedelta(days=3)


def test_public_base_url_links() -> None:
    """With PUBLIC_BASE_URL, links are plain base/key links that do not expire."""
    settings = load_settings(
        s3_access_key="a", s3_secret_key="b", public_base_url="https://cdn.example.com/"
    )
    link = Presigner.from_settings(settings).link(KEY)
    assert link == Link(f"https://cdn.example.com/{KEY}", None)


def test_presigner_repr_has_no_secret() -> None:
    """The presigner's repr shows no credentials."""
    settings = load_settings(s3_access_key="AKID", s3_secret_key="topsecret")
    assert "topsecret" not in repr(Presigner.from_settings(settings))


@pytest.mark.parametrize(
    "prompt",
    [
        "![x](http://evil.example/a.png)",
        "[点我](http://evil.example)",
        "<img src=http://evil.example/a.png>",
        "画一只猫 ![x](https://evil.example/a.png) 和 [链接](https://evil.example)",
    ],
)
def test_escape_defuses_links_and_images(prompt: str) -> None:
    """User text cannot form a Markdown image, link, HTML tag or bare URL."""
    text = escape(prompt)
    assert "](" not in text and "![" not in text and "<" not in text
    assert "http://" not in text and "https://" not in text
    assert "evil.example" in unicodedata.normalize("NFKC", text)  # look-alikes: still readable


def test_escape_removes_invisible_and_folds_lines() -> None:
    """Zero-width and bidi controls vanish; newlines cannot start new Markdown blocks."""
    text = escape("猫\u200b\u202e\n# 标题\n> 引用")
    assert "\u200b" not in text and "\u202e" not in text and "\n" not in text
    assert "#" not in text


def test_reply_markdown_shape() -> None:
    """The reply holds a title, the escaped prompt, the preview image, the original link, expiry."""
    expires = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    published = Published(
        "k.png",
        "k.preview.jpg",
        Link("https://h/p?sig=1", expires),
        Link("https://h/o?sig=2", expires),
    )
    text = image_reply(published, "小猫 [x](http://e)")
    assert "![预览](https://h/p?sig=1)" in text and "[查看原图](https://h/o?sig=2)" in text
    assert "2026-12-05 12:00" in text and "[x](http://e)" not in text
