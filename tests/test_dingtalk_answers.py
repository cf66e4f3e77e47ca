"""Hostile and odd DingTalk answers, from a small local server: the card and media clients turn
each into their own ``ReplyError`` (never a decoding or recursion error), cut the access token out
of what they report, renew a refused token once, and count a card as shown only when DingTalk
says so."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from imgbot.delivery.card_replies import CardReplies
from imgbot.dingtalk.answers import MAX_ANSWER_BYTES, errcode
from imgbot.dingtalk.cards import CREATE_PATH, UPDATE_PATH, CardClient, CardRefused
from imgbot.dingtalk.media import UPLOAD_PATH, MediaUploader
from imgbot.dingtalk.tokens import TOKEN_PATH, AccessTokens
from imgbot.errors import ReplyError
from imgbot.models import ImageRequest
from imgbot.observe import NoObserver
from tests.images import photo_png

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST = ImageRequest("画猫", "m1", "cid1", "1", "s1", "staff1", "", 0, "app")
DELIVERED = {"success": True, "result": {"deliverResults": [{"success": True, "errorMsg": ""}]}}
TOKEN_PREFIX = "tok-0123456789abcdef-"


class Server:
    """DingTalk's token, card and media APIs, each answering as the test says; every token it
    hands out is new, and the calls are counted."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.create: Handler = ok(DELIVERED)
        self.update: Handler = ok({"success": True, "result": True})
        self.upload: Handler = ok({"errcode": 0, "media_id": "@m1"})
        self.base = ""

    async def token(self, request: web.Request) -> web.Response:
        self.tokens.append(f"{TOKEN_PREFIX}{len(self.tokens)}")
        return web.json_response({"accessToken": self.tokens[-1], "expireIn": 7200})

    def route(self, name: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.calls.append((name, request.headers.get("x-acs-dingtalk-access-token", "")))
            handler: Handler = getattr(self, name)
            return await handler(request)

        return handle


def ok(body: Any, status: int = 200) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(body, status=status)

    return answer


def raw(body: bytes, status: int = 200) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, status=status, content_type="application/json")

    return answer


@asynccontextmanager
async def dingtalk() -> AsyncIterator[Server]:
    server = Server()
    app = web.Application(client_max_size=64 * 2**20)
    app.add_routes(
        [
            web.post(TOKEN_PATH, server.token),
            web.post(CREATE_PATH, server.route("create")),
            web.put(UPDATE_PATH, server.route("update")),
            web.post(UPLOAD_PATH, server.route("upload")),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def card_client(server: Server, *, seconds: float = 5) -> AsyncIterator[CardClient]:
    tokens = AccessTokens(openapi_endpoint=server.base, client_id="a", client_secret="b", timeout=5)
    client = CardClient(
        client_id="app",
        openapi_endpoint=server.base,
        tokens=tokens,
        template_id="t.schema",
        timeout=seconds,
        attempts=3,
        cooldown=60,
        min_gap=0,
        observer=NoObserver(),
    )
    try:
        yield client
    finally:
        await client.aclose()
        await tokens.aclose()


@asynccontextmanager
async def uploader(server: Server) -> AsyncIterator[MediaUploader]:
    tokens = AccessTokens(openapi_endpoint=server.base, client_id="a", client_secret="b", timeout=5)
    media = MediaUploader(
        oapi_endpoint=server.base, tokens=tokens, timeout=5, attempts=2, observer=NoObserver()
    )
    try:
        yield media
    finally:
        await media.aclose()
        await tokens.aclose()


HOSTILE = {
    "gbk-page": "<html>502 错误网关</html>".encode("gbk"),
    "deep-json": b"[" * 100_000 + b"]" * 100_000,
    "bad-utf8": b'{"errcode": 0, "media_id": "@\xff\xfe", "success": true}',
    # A good answer, but longer than any of DingTalk's: not read past the cap.
    "huge": json.dumps(
        {**DELIVERED, "errcode": 0, "media_id": "@m1", "pad": "x" * MAX_ANSWER_BYTES}
    ).encode(),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_card_answer_is_a_refusal(body: bytes, no_retry_waits: list[float]) -> None:
    """A GBK page, JSON nested past the parser, bytes that are not UTF-8 or a body over the cap,
    answered HTTP 200 to a create: the card counts as refused (the bot answers in Markdown),
    nothing else escapes."""
    async with dingtalk() as server, card_client(server) as cards:
        server.create = raw(body)
        with pytest.raises(CardRefused):
            await cards.create(REQUEST, {"k": "v"})
        assert cards.usable(REQUEST)  # one request's refusal pauses nothing


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_media_answer_is_a_reply_error(
    body: bytes, no_retry_waits: list[float]
) -> None:
    """The same answers to a media upload are a ``ReplyError``: the image goes by its link."""
    async with dingtalk() as server, uploader(server) as media:
        server.upload = raw(body)
        with pytest.raises(ReplyError, match="media upload answered"):
            await media.upload_image(photo_png(), "image/png")


async def test_card_refusal_reports_no_token(
    caplog: pytest.LogCaptureFixture, no_retry_waits: list[float]
) -> None:
    """DingTalk echoing the access token in its code, scopes or delivery error: neither the
    error nor the log holds it."""
    caplog.set_level(logging.INFO)

    async def echo(request: web.Request) -> web.Response:
        token = request.headers["x-acs-dingtalk-access-token"]
        split = f"{token[:8]}\n{token[8:]}"
        detail = {"requiredScopes": [f"Card.{split}"]}
        body = {"code": f"Forbidden {split}", "accessdenieddetail": detail}
        return web.json_response(body, status=403)

    async def undelivered(request: web.Request) -> web.Response:
        token = request.headers["x-acs-dingtalk-access-token"]
        failed = {"success": False, "errorMsg": f"bad {token[:5]}\r\n{token[5:]}"}
        return web.json_response({"success": True, "result": {"deliverResults": [failed]}})

    async with dingtalk() as server, card_client(server) as cards:
        server.create = undelivered
        with pytest.raises(CardRefused) as first:
            await cards.create(REQUEST, {"k": "v"})
        server.create = echo
        with pytest.raises(CardRefused) as second:
            await cards.create(REQUEST, {"k": "v"})
    (token,) = server.tokens
    said = f"{first.value} {second.value} {caplog.text}"
    assert "card not delivered: bad" in said and "missing permission Card." in said
    assert token[8:] not in said and token[5:] not in said


async def test_media_errmsg_split_token_is_cut(no_retry_waits: list[float]) -> None:
    """A media refusal whose errmsg holds the token split by a line break does not show it."""

    async def echo(request: web.Request) -> web.Response:
        await request.read()
        token = request.query["access_token"]
        return web.json_response({"errcode": 1, "errmsg": f"tok {token[:10]}\n{token[10:]}"})

    async with dingtalk() as server, uploader(server) as media:
        server.upload = echo
        with pytest.raises(ReplyError, match="errcode 1 tok") as refused:
            await media.upload_image(photo_png(), "image/png")
    assert server.tokens[0][10:] not in str(refused.value)


async def test_card_401_is_retried_with_a_new_token(no_retry_waits: list[float]) -> None:
    """A card call refused with HTTP 401 is made once more with a new token, and succeeds."""
    async with dingtalk() as server, card_client(server) as cards:
        refused = False

        async def once_401(request: web.Request) -> web.Response:
            nonlocal refused
            await request.read()
            if not refused:
                refused = True
                return web.json_response({"code": "InvalidAuthentication"}, status=401)
            return web.json_response(DELIVERED)

        server.create = once_401
        await cards.create(REQUEST, {"k": "v"})
    assert [token for _, token in server.calls] == server.tokens and len(server.tokens) == 2


async def test_create_made_before_its_5xx_counts_as_made(no_retry_waits: list[float]) -> None:
    """A create answered 5xx after it made the card is retried; the retry told the outTrackId
    exists counts as made: the card shows progress and the card API is not paused."""
    made: set[str] = set()

    async def made_then_502(request: web.Request) -> web.Response:
        track = (await request.json())["outTrackId"]
        if track in made:
            return web.json_response({"code": "param.outTrackIdExist"}, status=400)
        made.add(track)
        return web.json_response({"code": "ServiceUnavailable"}, status=502)

    async with dingtalk() as server, card_client(server) as cards:
        server.create = made_then_502
        assert await CardReplies(cards).progress(REQUEST) is True
        assert cards.usable(REQUEST)
    assert [name for name, _ in server.calls] == ["create", "create"]


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "code": "InvalidParameter", "result": None},
        {"success": True, "result": {"deliverResults": []}},
        {"success": True},
        [DELIVERED],
    ],
    ids=["success-false", "no-deliveries", "no-result", "not-an-object"],
)
async def test_create_not_said_delivered_is_refused(body: Any, no_retry_waits: list[float]) -> None:
    """HTTP 200 without a successful delivery: the card counts as not shown, for this request
    only (the card API is not paused)."""
    async with dingtalk() as server, card_client(server) as cards:
        server.create = ok(body)
        assert await CardReplies(cards).progress(REQUEST) is False
        assert cards.usable(REQUEST)


async def test_update_result_false_is_not_shown(no_retry_waits: list[float]) -> None:
    """A final update answered ``result: false`` is not shown: the answer goes as Markdown."""
    async with dingtalk() as server, card_client(server) as cards:
        server.update = ok({"success": True, "result": False})
        assert await CardReplies(cards).sentence(REQUEST, "没能完成") is False


async def test_unanswered_final_update_counts_as_shown(
    caplog: pytest.LogCaptureFixture, no_retry_waits: list[float]
) -> None:
    """A final update DingTalk took but did not answer in time may show the answer: it counts as
    shown (no Markdown as well), and is logged."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.json_response({"success": True, "result": True})

    async with dingtalk() as server, card_client(server, seconds=0.5) as cards:
        server.update = hang
        try:
            shown = await CardReplies(cards).sentence(REQUEST, "没能完成")
        finally:
            release.set()
    assert shown is True and "final card update unconfirmed" in caplog.text


async def test_concurrent_refusals_log_once_and_bad_space_pauses_nothing(
    caplog: pytest.LogCaptureFixture, no_retry_waits: list[float]
) -> None:
    """Four creates refused at once for the QPS limit start one pause, logged once; a 400 for
    one chat's space refuses that card only."""
    caplog.set_level(logging.INFO)
    requests = [
        ImageRequest("画猫", f"m{n}", "cid1", "1", "s1", f"staff{n}", "", 0, "app")
        for n in range(4)
    ]
    async with dingtalk() as server, card_client(server) as cards:
        server.create = ok({"code": "param.openSpaceIdInvalid"}, status=400)
        with pytest.raises(CardRefused):
            await cards.create(requests[0], {"k": "v"})
        assert cards.usable(requests[0])
        server.create = ok({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, status=403)
        refused = await asyncio.gather(
            *(cards.create(r, {"k": "v"}) for r in requests), return_exceptions=True
        )
        assert all(isinstance(r, CardRefused) for r in refused) and not cards.usable(requests[0])
    assert caplog.text.count("card API refused") == 1


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, 0),
        ("40014", 40014),
        (" -1 ", -1),
        (88.0, 88),
        ("--40001", -1),
        ("٤٠٠١٤", -1),
        ("1e3", -1),
        (True, -1),
        ("1234567890123", -1),
        (None, -1),
    ],
)
def test_errcode_reads_only_plain_numbers(value: object, code: int) -> None:
    """An errcode is an int, or text of ASCII digits with one optional minus; anything else is
    -1 (not a number), never an exception."""
    assert errcode({"errcode": value}) == code
