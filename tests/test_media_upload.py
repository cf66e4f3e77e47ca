"""DINGTALK_MEDIA_UPLOAD: the preview uploaded to DingTalk's media store and shown by its media id,
through the real SDK, the simulator's oapi and a real MinIO; the uploader's own refusals."""

from __future__ import annotations

import io
import logging
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from imgbot.config.settings import load_settings
from imgbot.dingtalk.media import MAX_MEDIA_BYTES, MediaUploader
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ConfigError, ReplyError
from imgbot.observe import NoObserver
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import LINK_RE, image_replies, running_bot
from tests.images import photo_png
from tests.polling import wait_until
from tests.processes import free_port

CAT = "帮我画一只可爱的小猫"
KEYS = {"s3_access_key": "AKIDEXAMPLE", "s3_secret_key": "very-secret-value-123"}
REFUSED_LINE = "media upload failed"


def test_settings_default_off_and_oapi_is_an_origin() -> None:
    """Uploads are off by default, the oapi origin is DingTalk's, and one with a path (or no
    http(s) URL) stops the bot at start naming DINGTALK_OAPI_ENDPOINT."""
    settings = load_settings(**KEYS)
    assert settings.dingtalk_media_upload is False
    assert settings.dingtalk_oapi_endpoint == "https://oapi.dingtalk.com"
    assert load_settings(
        **KEYS, dingtalk_oapi_endpoint="http://127.0.0.1:9/"
    ).dingtalk_oapi_endpoint == ("http://127.0.0.1:9")
    for bad in ("https://oapi.dingtalk.com/media", "oapi.dingtalk.com"):
        with pytest.raises(ConfigError, match="DINGTALK_OAPI_ENDPOINT"):
            load_settings(**KEYS, dingtalk_oapi_endpoint=bad)


def stored_objects(admin_s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object in ``bucket``, by key."""
    listed = admin_s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        one["Key"]: admin_s3.get_object(Bucket=bucket, Key=one["Key"])["Body"].read()
        for one in listed
    }


def bot_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the bot logged (messages and tracebacks), leaving out the simulator's own lines."""
    records = [r for r in caplog.records if not r.name.startswith(("imgbot.simulator", "aiohttp"))]
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)


def images(simulator: DingTalkSimulator) -> list[Any]:
    """The native image messages the bot sent."""
    return [r for r in simulator.replies if r.msgtype == "image"]


@pytest.mark.minio
@pytest.mark.e2e
async def test_image_shows_the_uploaded_preview_by_media_id(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    admin_s3: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The image message's photoURL is a media id whose bytes are the stored preview; the caption
    keeps the original's link; quoting that image edits it; the token is never logged."""
    caplog.set_level(logging.DEBUG)
    settings = {"reply_style": "image", "dingtalk_media_upload": True, "preview_max_side": 256}
    async with running_bot(simulator, **settings) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
        first = images(simulator)[0]
        await simulator.send_quote("加一顶帽子", simulator.quote_of_reply(first))
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 2}, timeout=30)
    first, second = images(simulator)
    assert first.channel == "robot_o2o" and first.text.startswith("@")
    stored = stored_objects(admin_s3, s3_env["S3_BUCKET"])
    previews = {data for key, data in stored.items() if ".preview." in key}
    assert len(previews) == 2 and second.text.startswith("@")
    assert {simulator.media(first.text), simulator.media(second.text)} == previews
    assert simulator.files.calls[-1].status == 200  # the quoted image's download code
    captions = [r for r in simulator.replies if r.msgtype == "markdown"]
    assert len(captions) == 2 and all(LINK_RE.search(c.text) for c in captions)
    assert not image_replies(simulator)
    uploads = simulator.media_uploads
    assert [u.errcode for u in uploads] == [0, 0]
    assert uploads[0].access_token not in bot_log(caplog)
    assert "uploaded a picture" in bot_log(caplog)


@pytest.mark.minio
@pytest.mark.e2e
async def test_refused_upload_sends_the_link_image(
    simulator: DingTalkSimulator, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A refused upload: the image goes by its link, one answer, one log line, no token logged."""
    caplog.set_level(logging.DEBUG)
    simulator.refuse_media_uploads = True
    async with running_bot(simulator, reply_style="image", dingtalk_media_upload=True) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    (image,) = images(simulator)
    with urllib.request.urlopen(image.text, timeout=10) as answer:  # noqa: ASYNC210
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("image/")
    progress, _, caption = simulator.replies
    assert progress.msgtype == "text" and caption.msgtype == "markdown"
    assert not image_replies(simulator)
    assert [u.errcode for u in simulator.media_uploads] == [90020]
    logged = bot_log(caplog)
    assert logged.count(REFUSED_LINE) == 1 and "errcode 90020" in logged
    assert simulator.media_uploads[0].access_token not in logged


UNUSED = "DINGTALK_MEDIA_UPLOAD=true does nothing"


@pytest.mark.minio
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("settings", "native", "unused"),
    [
        ({"reply_style": "image"}, 1, False),
        ({"reply_style": "markdown", "dingtalk_media_upload": True}, 0, True),
        (
            {"reply_style": "image", "preview_format": "webp", "dingtalk_media_upload": True},
            1,
            True,
        ),
    ],
    ids=["upload-off", "markdown-style", "webp-previews"],
)
async def test_no_upload_unless_on_with_image_style(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    native: int,
    unused: bool,
) -> None:
    """Uploads off, Markdown replies or webp previews: the media API is never called, the image
    goes by its link, and a setting that does nothing is named in one warning at start."""
    caplog.set_level(logging.INFO)
    async with running_bot(simulator, **settings) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert simulator.media_uploads == []
    sent = images(simulator)
    assert len(sent) == native and all(r.text.startswith("http") for r in sent)
    assert bot_log(caplog).count(UNUSED) == (1 if unused else 0)
    assert REFUSED_LINE not in bot_log(caplog)


@asynccontextmanager
async def uploader_for(
    simulator: DingTalkSimulator, oapi: str | None = None
) -> AsyncIterator[MediaUploader]:
    """An uploader with the simulator's credentials, as the bot builds it; ``oapi`` replaces the
    simulator's oapi origin."""
    tokens = AccessTokens(
        openapi_endpoint=simulator.base_url,
        client_id="sim-client-id",
        client_secret="sim-client-secret",
        timeout=5,
    )
    uploader = MediaUploader(
        oapi_endpoint=oapi or simulator.oapi_url,
        tokens=tokens,
        timeout=5,
        attempts=2,
        observer=NoObserver(),
    )
    try:
        yield uploader
    finally:
        await uploader.aclose()
        await tokens.aclose()


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (b"\xff\xd8\xff" + bytes(MAX_MEDIA_BYTES - 2), "image/jpeg", "1 to 20971520 bytes"),
        (b"", "image/png", "1 to 20971520 bytes"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp", "jpg, png, gif or bmp"),
    ],
    ids=["over-20-MB", "empty", "webp"],
)
async def test_uploader_refuses_before_sending(
    simulator: DingTalkSimulator, data: bytes, content_type: str, why: str
) -> None:
    """A picture over 20 MB, empty, or of another type is refused without calling DingTalk."""
    async with uploader_for(simulator) as uploader:
        with pytest.raises(ReplyError, match=why):
            await uploader.upload_image(data, content_type)
    assert simulator.media_uploads == []


async def test_uploader_sends_twenty_megabytes_and_reads_refusals(
    simulator: DingTalkSimulator, no_retry_waits: list[float]
) -> None:
    """Exactly 20 MB is uploaded; an in-band refusal is a ReplyError naming its errcode, and the
    uploader's repr and errors never hold the token."""
    data = b"\xff\xd8\xff" + bytes(MAX_MEDIA_BYTES - 3)
    async with uploader_for(simulator) as uploader:
        media_id = await uploader.upload_image(data, "image/jpeg")
        simulator.refuse_media_uploads = True
        with pytest.raises(ReplyError, match="errcode 90020") as refused:
            await uploader.upload_image(photo_png(), "image/png")
        token = simulator.media_uploads[0].access_token
        assert token not in repr(uploader) and token not in str(refused.value)
    assert simulator.media(media_id) == data
    assert [u.errcode for u in simulator.media_uploads] == [0, 90020]
    assert no_retry_waits == []  # a refusal is not retried


async def test_simulator_upload_checks_token_type_and_picture(
    simulator: DingTalkSimulator, http: aiohttp.ClientSession
) -> None:
    """The simulated oapi answers in-band errcodes for a bad token, a type other than image, a
    file that is not a picture, and serves a good upload under its media id."""

    async def upload(token: str, kind: str, data: bytes) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("media", io.BytesIO(data), filename="a.png", content_type="image/png")
        params = {"access_token": token, "type": kind}
        async with http.post(simulator.oapi_url + "/media/upload", params=params, data=form) as r:
            assert r.status == 200
            answer: dict[str, Any] = await r.json()
            return answer

    async with http.post(
        simulator.base_url + "/v1.0/oauth2/accessToken",
        json={"appKey": "sim-client-id", "appSecret": "sim-client-secret"},
    ) as answer:
        token = (await answer.json())["accessToken"]
    picture = photo_png()
    assert (await upload("wrong", "image", picture))["errcode"] == 40014
    assert (await upload(token, "file", picture))["errcode"] == 40004
    assert (await upload(token, "image", b"%PDF-1.7"))["errcode"] == 40005
    good = await upload(token, "image", picture)
    assert good["errcode"] == 0 and good["media_id"].startswith("@")
    async with http.get(simulator.base_url + "/chat/media/" + good["media_id"]) as served:
        assert served.status == 200 and served.content_type == "image/png"
        assert await served.read() == picture
    async with http.post(simulator.base_url + "/media/upload") as elsewhere:
        assert elsewhere.status == 404  # the oapi lives on its own origin


async def test_unreachable_oapi_is_retried_then_refused_without_the_url(
    simulator: DingTalkSimulator, no_retry_waits: list[float]
) -> None:
    """An oapi origin nobody listens on: retried, then a ReplyError naming the error type only."""
    async with uploader_for(simulator, f"http://127.0.0.1:{free_port()}") as uploader:
        with pytest.raises(ReplyError, match="unreachable: ClientConnectorError") as failed:
            await uploader.upload_image(photo_png(), "image/png")
    assert "access_token" not in str(failed.value) and "127.0.0.1" not in str(failed.value)
    assert len(no_retry_waits) == 1  # two attempts, one wait between them


async def test_expired_token_is_renewed_once(
    simulator: DingTalkSimulator, no_retry_waits: list[float]
) -> None:
    """A token DingTalk no longer takes (errcode 40014) is dropped from the shared cache and the
    upload made again with a new one."""
    picture = photo_png(256)
    async with uploader_for(simulator) as uploader:
        await uploader.upload_image(picture, "image/png")
        simulator.expire_access_tokens()
        media_id = await uploader.upload_image(picture, "image/png")
    first, refused, again = simulator.media_uploads
    assert [first.errcode, refused.errcode, again.errcode] == [0, 40014, 0]
    assert refused.access_token == first.access_token != again.access_token
    assert simulator.media(media_id) == picture and media_id != first.media_id
