"""CDN URL authentication: links signed by the documented formulas, checked by a stand-in edge
that fetches from the private MinIO with its own credentials."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from yarl import URL

from imgbot.config.settings import load_settings
from imgbot.errors import ConfigError
from imgbot.objects.cdn_auth import sign_query
from imgbot.presign import Presigner
from imgbot.simulator.loop_thread import LoopThread
from tests.conftest import CliRunner
from tests.fake_cdn import FakeCdnEdge
from tests.images import photo_png
from tests.minio_server import MinioServer
from tests.test_doctor import bot_user

pytestmark = pytest.mark.minio
KEY = "cdn-key-0123456789abcdef"
TTL = 600


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def status_of(url: str) -> int:
    """The HTTP status of an unauthenticated GET, from a thread (the edge shares our loop)."""
    return await asyncio.to_thread(_status, url)


def test_type_a_and_d_follow_the_documented_formulas() -> None:
    """Type A is md5 of "path-timestamp-rand-uid-key"; type D is md5 of key + path + timestamp."""
    path, ts = "/imagegen/2026/12/01/abc.png", 1764547200
    a = sign_query("tencent-a", KEY, path, ts, rand="r4nd")
    digest_a = hashlib.md5(f"{path}-{ts}-r4nd-0-{KEY}".encode(), usedforsecurity=False)
    assert a == f"sign={ts}-r4nd-0-{digest_a.hexdigest()}"
    d = sign_query("tencent-d", KEY, path, ts)
    digest = hashlib.md5(f"{KEY}{path}{ts}".encode(), usedforsecurity=False).hexdigest()
    assert d == f"sign={digest}&t={ts}"
    # A fresh rand for every link.
    assert sign_query("tencent-a", KEY, path, ts) != sign_query("tencent-a", KEY, path, ts)


@pytest.fixture(params=["tencent-a", "tencent-d"])
async def edge(
    request: pytest.FixtureRequest, minio: MinioServer, admin_s3: Any, bucket: str
) -> AsyncIterator[FakeCdnEdge]:
    """A CDN edge of each type in front of this test's private bucket."""
    admin_s3.create_bucket(Bucket=bucket)
    cdn = FakeCdnEdge(admin_s3, bucket, kind=request.param, key=KEY, valid_seconds=TTL)
    await cdn.start()
    yield cdn
    await cdn.stop()


def presigner(minio: MinioServer, bucket: str, edge: FakeCdnEdge) -> Presigner:
    return Presigner(
        public_endpoint=minio.endpoint,
        bucket=bucket,
        region="us-east-1",
        access_key=minio.access_key,
        secret_key=minio.secret_key,
        addressing_style="path",
        ttl=TTL,
        public_base_url=edge.url,
        cdn_auth=edge.kind,  # type: ignore[arg-type]
        cdn_key=SecretStr(KEY),
    )


async def test_cdn_links_load_and_the_bucket_stays_private(
    minio: MinioServer, admin_s3: Any, bucket: str, edge: FakeCdnEdge
) -> None:
    """A fresh link loads through the edge; unsigned, tampered and expired ones are refused."""
    key = "imagegen/2026/12/01/pic.png"
    admin_s3.put_object(Bucket=bucket, Key=key, Body=b"picture", ContentType="image/png")
    links = presigner(minio, bucket, edge)
    now = datetime.now(UTC).replace(microsecond=0)
    link = links.link(key)
    assert link.url.startswith(f"{edge.url}/{key}?sign=")
    assert link.expires_at is not None
    assert now <= link.expires_at - timedelta(seconds=TTL) <= now + timedelta(seconds=2)
    assert await status_of(link.url) == 200 and edge.origin_fetches == 1
    assert await status_of(f"{edge.url}/{key}") == 403
    assert await status_of(link.url.replace("pic.png", "other.png")) == 403
    stale = links.with_clock(lambda: now - timedelta(seconds=TTL + 5)).link(key)
    assert await status_of(stale.url) == 403
    assert await status_of(f"{minio.endpoint}/{bucket}/{key}") == 403  # the bucket is not public
    assert edge.origin_fetches == 1


@pytest.fixture
def edge_thread(minio: MinioServer, admin_s3: Any, bucket: str) -> Iterator[FakeCdnEdge]:
    """A type-D edge on a loop of its own, for tests that run the CLI (blocking)."""
    cdn = FakeCdnEdge(admin_s3, bucket, kind="tencent-d", key=KEY, valid_seconds=TTL)
    thread = LoopThread("fake-cdn")
    thread.start()
    thread.run_blocking(cdn.start())
    yield cdn
    thread.run_blocking(cdn.stop())
    thread.stop_blocking()


def test_cli_in_cdn_mode_keeps_the_bucket_private(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    minio: MinioServer,
    bucket: str,
    edge_thread: FakeCdnEdge,
    tmp_path: Path,
    cli_here: CliRunner,
) -> None:
    """setup keeps the bucket private; publish prints CDN links that load; doctor checks the
    console's validity against the link lifetime."""
    for key, value in {
        "PUBLIC_BASE_URL": edge_thread.url,
        "CDN_URL_AUTH": "tencent-d",
        "CDN_AUTH_KEY": KEY,
        "PRESIGN_TTL_SECONDS": str(TTL),
    }.items():
        monkeypatch.setenv(key, value)
    done = cli_here("setup")
    assert done.returncode == 0 and "is private" in done.stdout, done.stdout + done.stderr
    picture = tmp_path / "pic.png"
    picture.write_bytes(photo_png(64))
    before = datetime.now(UTC).replace(microsecond=0)  # links are signed in whole seconds
    done = cli_here("publish", str(picture), "--json")
    after = datetime.now(UTC)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["url"].startswith(f"{edge_thread.url}/imagegen/")
    expires = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=TTL) <= expires <= after + timedelta(seconds=TTL)
    for url in (document["url"], document["original_url"]):
        assert _status(url) == 200
        assert _status(url.split("?", 1)[0]) == 403
    assert _status(f"{minio.endpoint}/{bucket}/{document['key']}") == 403
    bot_user(monkeypatch, s3_env, cli_here)
    healthy = cli_here("doctor")
    assert healthy.returncode == 0, healthy.stdout
    assert "cdn unsigned" in healthy.stdout and "cdn lifetime" in healthy.stdout
    edge_thread.valid_seconds = 3600  # the console says an hour, imgbot says ten minutes
    wrong = cli_here("doctor")
    assert wrong.returncode == 1
    assert [line for line in wrong.stdout.splitlines() if line.startswith("PROBLEM")] == [
        next(line for line in wrong.stdout.splitlines() if "cdn lifetime" in line)
    ]
    assert f"{TTL} seconds" in wrong.stdout


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"CDN_URL_AUTH": "tencent-d", "CDN_AUTH_KEY": KEY}, "PUBLIC_BASE_URL"),
        ({"CDN_URL_AUTH": "tencent-d", "PUBLIC_BASE_URL": "https://cdn.test"}, "CDN_AUTH_KEY"),
        ({"CDN_URL_AUTH": "tencent-b", "CDN_AUTH_KEY": KEY}, "CDN_URL_AUTH"),
    ],
)
def test_cdn_settings_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], key: str, cli_here: CliRunner
) -> None:
    """A missing CDN key or base URL, or an unknown type, stops the CLI with exit 2 naming it."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 2
    assert done.stderr.startswith(f"imgbot: configuration error: {key}:"), done.stderr
    assert KEY not in done.stderr and len(done.stderr.splitlines()) == 1


async def test_shorter_cdn_links_stop_when_they_say(
    minio: MinioServer, admin_s3: Any, bucket: str, edge: FakeCdnEdge
) -> None:
    """A link asked for a shorter life than the console's validity stops at its own expiry."""
    key = "imagegen/2026/12/01/short.png"
    admin_s3.put_object(Bucket=bucket, Key=key, Body=b"picture", ContentType="image/png")
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=120)
    signer = presigner(minio, bucket, edge).with_clock(lambda: earlier)
    short, full = signer.link(key, ttl=60), signer.link(key)
    assert short.expires_at == earlier + timedelta(seconds=60)
    assert full.expires_at == earlier + timedelta(seconds=TTL)
    assert await status_of(short.url) == 403  # signed two minutes ago for one minute
    assert await status_of(full.url) == 200


@pytest.mark.parametrize("kind", ["tencent-a", "tencent-d"])
@pytest.mark.parametrize(
    "base",
    [
        "https://cdn.example.com/图片",
        "https://cdn.example.com/%E5%9B%BE%E7%89%87",
        "https://cdn.example.com/a/../b",
        "https://cdn.example.com/a/./b",
        "https://cdn.example.com//b",
        "https://cdn.example.com/a b",
        "https://cdn.example.com/a;b",
    ],
)
def test_cdn_base_path_a_browser_would_rewrite_is_refused(kind: str, base: str) -> None:
    """A PUBLIC_BASE_URL path that a browser requests otherwise than written (encoded, decoded,
    resolved) is refused naming PUBLIC_BASE_URL: every signature over it would fail at the edge."""
    with pytest.raises(ConfigError) as refused:
        load_settings(
            s3_access_key="a",
            s3_secret_key="b",
            public_base_url=base,
            cdn_url_auth=kind,
            cdn_auth_key=KEY,
        )
    assert refused.value.key == "PUBLIC_BASE_URL"
    assert KEY not in str(refused.value)


def test_cli_refuses_a_rewritten_cdn_base_path(
    monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """`imgbot url` with PUBLIC_BASE_URL=…/a/../b exits 2 with one line naming the key."""
    for name, value in {
        "S3_ACCESS_KEY": "a",
        "S3_SECRET_KEY": "b",
        "PUBLIC_BASE_URL": "https://cdn.example.com/a/../b",
        "CDN_URL_AUTH": "tencent-a",
        "CDN_AUTH_KEY": KEY,
    }.items():
        monkeypatch.setenv(name, value)
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 2
    assert done.stderr.startswith("imgbot: configuration error: PUBLIC_BASE_URL:"), done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("kind", ["tencent-a", "tencent-d"])
def test_cdn_links_under_a_base_path_verify_where_browsers_request(kind: str) -> None:
    """Under an accepted base path the signature verifies for the path a client requests (yarl
    normalises as browsers do), at the signing time."""
    settings = load_settings(
        s3_access_key="a",
        s3_secret_key="b",
        public_base_url="https://cdn.example.com/img-v1/a_b.c~d/",
        cdn_url_auth=kind,
        cdn_auth_key=KEY,
        presign_ttl_seconds=TTL,
    )
    signed_at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    link = Presigner.from_settings(settings).with_clock(lambda: signed_at).link("imagegen/k.png")
    requested = URL(link.url)
    assert requested.raw_path == "/img-v1/a_b.c~d/imagegen/k.png"
    edge = FakeCdnEdge(None, "bucket", kind=kind, key=KEY, valid_seconds=TTL)
    assert edge.signed_at(requested.raw_path, requested.query) == int(signed_at.timestamp())
    assert edge.signed_at("/imagegen/k.png", requested.query) is None  # the path is covered
