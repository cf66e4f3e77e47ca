"""Pipeline.edit and Pipeline.stored_picture against the real MinIO and the provider stand-ins."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgbot.config.settings import load_settings
from imgbot.errors import (
    EditUnavailable,
    GeneratorTimeout,
    ImageError,
    StorageError,
    UserPictureError,
)
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.models import GeneratedImage, ImageRequest, Origin, PictureRef
from imgbot.objects.keys import is_our_key, key_label, object_keys
from imgbot.objects.metadata import object_metadata
from imgbot.studio.maker import Studio
from imgbot.studio.pipeline import Pipeline
from tests import hostile
from tests.conftest import run_cli, set_up_bucket
from tests.fake_providers import FakeProviders
from tests.images import (
    decompression_bomb,
    encode,
    jpeg_with_gps,
    phone_jpeg,
    photo_like,
    same_pixels,
)
from tests.test_edit_generators import CASES, Case, make_editor

pytestmark = pytest.mark.minio
INSTRUCTION = "背景换成海边"
ORIGIN = Origin(INSTRUCTION, msg_id="msg-edit-1", conversation_id="cid-1", sender_staff_id="s1")


def truncated_jpeg() -> bytes:
    data = encode(photo_like(256), "JPEG", quality=90)
    return data[: len(data) // 2]


HOSTILE = {
    "empty": b"",
    "bomb": decompression_bomb(),
    "truncated": truncated_jpeg(),
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
    "html": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "1000-empty-scans": hostile.jpeg_repeated_empty_scans(),
}


@pytest.fixture
def pipeline(s3_env: dict[str, str]) -> Pipeline:
    """A pipeline on this test's (set-up) bucket, drawing and editing with the placeholder."""
    set_up_bucket()
    return Pipeline.from_settings(load_settings(), PlaceholderGenerator())


def metadata_of(admin_s3: Any, bucket: str, key: str) -> dict[str, str]:
    head = admin_s3.head_object(Bucket=bucket, Key=key)
    return {name: unquote(value) for name, value in head["Metadata"].items()}


def stored_keys(admin_s3: Any, bucket: str) -> list[str]:
    listing = admin_s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_edit_stores_the_picture_and_publishes_the_edit(
    pipeline: Pipeline, admin_s3: Any, bucket: str
) -> None:
    """An edit stores the user's picture under the prefix without its EXIF, GPS or comment, and
    publishes the edited picture with metadata naming that stored key."""
    published = await pipeline.edit(jpeg_with_gps(), INSTRUCTION, ORIGIN)
    edited = metadata_of(admin_s3, bucket, published.key)
    source = edited["edit-of"]
    assert edited["operation"] == "edit" and edited["prompt"] == INSTRUCTION
    assert edited["generator"] == "placeholder" and edited["dingtalk-msg-id"] == "msg-edit-1"
    assert is_our_key("imagegen/", source) and source != published.key
    assert metadata_of(admin_s3, bucket, source)["operation"] == "upload"
    stored = admin_s3.get_object(Bucket=bucket, Key=source)
    body = stored["Body"].read()
    assert stored["ContentType"] == "image/jpeg"
    assert b"secret place" not in body and b"TestCamera" not in body
    assert "exif" not in Image.open(io.BytesIO(body)).info
    # The lifecycle rule covers the user's picture like any image we store.
    assert "rule-id" in stored["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    result = Image.open(io.BytesIO(await pipeline.stored_picture(published.key, "cid-1")))
    assert result.size == (256, 256)


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_pictures_are_refused_before_anything_is_stored(
    pipeline: Pipeline, admin_s3: Any, bucket: str, name: str
) -> None:
    """An empty, bomb, truncated, SVG or HTML "picture" is the user's (UserPictureError) and
    stores nothing."""
    with pytest.raises(UserPictureError):
        await pipeline.edit(HOSTILE[name], INSTRUCTION, ORIGIN)
    assert stored_keys(admin_s3, bucket) == []


async def test_oversized_picture_is_refused(
    s3_env: dict[str, str], admin_s3: Any, bucket: str
) -> None:
    """A picture above MAX_IMAGE_BYTES is refused with ImageError and nothing is stored."""
    assert run_cli("setup").returncode == 0
    settings = load_settings(max_image_bytes=64 * 1024)
    pipeline = Pipeline.from_settings(settings, PlaceholderGenerator())
    with pytest.raises(ImageError, match="more than the limit"):
        await pipeline.edit(encode(photo_like(512), "PNG"), INSTRUCTION, ORIGIN)
    assert stored_keys(admin_s3, bucket) == []


async def test_a_picture_too_slow_to_decode_is_refused_and_holds_no_one_else(
    s3_env: dict[str, str], admin_s3: Any, bucket: str
) -> None:
    """A JPEG whose decoding outlasts PICTURE_CPU_SECONDS is the user's too_slow picture and
    stores nothing; another user's small picture sent at the same time is edited."""
    assert run_cli("setup").returncode == 0
    settings = load_settings(picture_cpu_seconds=1, max_jpeg_scans=10_000)
    pipeline = Pipeline.from_settings(settings, PlaceholderGenerator())
    slow = hostile.jpeg_repeated_empty_scans(5000, (5000, 4000))
    victim = Origin(INSTRUCTION, msg_id="msg-2", conversation_id="cid-2", sender_staff_id="s2")
    attack, edited = await asyncio.gather(
        pipeline.edit(slow, INSTRUCTION, ORIGIN),
        pipeline.edit(encode(photo_like(160), "PNG"), INSTRUCTION, victim),
        return_exceptions=True,
    )
    assert isinstance(attack, UserPictureError) and attack.kind == "too_slow"
    assert not isinstance(edited, BaseException)
    source = metadata_of(admin_s3, bucket, edited.key)["edit-of"]
    assert stored_keys(admin_s3, bucket) == sorted({source, edited.key, edited.preview_key})


@pytest.mark.parametrize(
    "key",
    [
        "other/2026/01/01/aaaaaaaaaaaaaaaaaaaaaaaaaa.png",
        "imagegen/../secret.png",
        "imagegen/2026/01/01/notourtoken.png",
        "imagegen/2026/01/01/aaaaaaaaaaaaaaaaaaaaaaaaaa.png.exe",
        "imagegen/2026/01/01/aaaaaaaaaaaaaaaaaaaaaaaaaa.svg",
        "",
    ],
)
async def test_stored_picture_refuses_foreign_keys(pipeline: Pipeline, key: str) -> None:
    """Keys not of our shape under S3_PREFIX are refused without a storage call."""
    with pytest.raises(StorageError) as refused:
        await pipeline.stored_picture(key, "cid-1")
    assert refused.value.code == "ForeignKey"


async def test_stored_picture_is_capped(pipeline: Pipeline, admin_s3: Any, bucket: str) -> None:
    """An object of ours above MAX_IMAGE_BYTES is refused (TooLarge); a missing one NoSuchKey."""
    key = "imagegen/2026/01/01/" + "a" * 26 + ".png"
    body = b"\0" * (pipeline.limits.max_bytes + 1)
    metadata = object_metadata(ORIGIN, "placeholder", "")
    admin_s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
    with pytest.raises(StorageError) as large:
        await pipeline.stored_picture(key, "cid-1")
    assert large.value.code == "TooLarge"
    with pytest.raises(StorageError) as missing:
        await pipeline.stored_picture(key.replace("aaaa", "bbbb"), "cid-1")
    assert missing.value.code == "NoSuchKey"


_conversation = st.text(min_size=1, max_size=120) | st.sampled_from(
    [
        "cid-1",
        "cid-1 ",
        "CID-1",
        "cid-1\n",
        "cid%2D1",
        "cid6KeBBLoveMJOGXoYKF5x7EeiodoA/+oq9ys0x6VCa4Q=",
    ]
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(owner=_conversation, other=_conversation)
def test_a_stored_picture_is_read_only_from_its_own_conversation(
    pipeline: Pipeline, owner: str, other: str
) -> None:
    """A picture stored for one conversation is read for that conversation and refused
    (NotYours, before any byte is read) for any other, whatever characters the ids hold."""
    assume(owner != other)
    key = object_keys("imagegen/", datetime.now(UTC), "png", "jpg")[0]
    metadata = object_metadata(Origin("猫", "m1", owner, "s1"), "placeholder", "")
    pipeline.storage.put(key, b"png", content_type="image/png", cache_control="", metadata=metadata)
    assert asyncio.run(pipeline.stored_picture(key, owner)) == b"png"
    with pytest.raises(StorageError) as refused:
        asyncio.run(pipeline.stored_picture(key, other))
    assert refused.value.code == "NotYours"


@pytest.mark.parametrize(
    "metadata", [{}, {"dingtalk-conversation-id": ""}, {"operation": "upload"}]
)
async def test_a_picture_stored_without_its_conversation_is_nobodys(
    pipeline: Pipeline, admin_s3: Any, bucket: str, metadata: dict[str, str]
) -> None:
    """A picture stored before conversations were recorded on objects (or by `imgbot publish`)
    is edited from no conversation, not even one with an empty id."""
    key = object_keys("imagegen/", datetime.now(UTC), "png", "jpg")[0]
    admin_s3.put_object(
        Bucket=bucket, Key=key, Body=encode(photo_like(64), "PNG"), Metadata=metadata
    )
    for conversation in ("cid-1", ""):
        with pytest.raises(StorageError) as refused:
            await pipeline.stored_picture(key, conversation)
        assert refused.value.code == "NotYours"


async def test_an_edit_of_a_stored_picture_names_it_and_stores_no_copy(
    pipeline: Pipeline, admin_s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Editing one of our stored pictures stores the edit only: no copy of the picture, and the
    edit's ``edit-of`` is the picture's own key; INFO logs name keys by label only."""
    caplog.set_level(logging.INFO)
    drawn = await pipeline.draw("一只猫", ORIGIN)
    before = stored_keys(admin_s3, bucket)
    picture = await pipeline.stored_picture(drawn.key, ORIGIN.conversation_id)
    published = await pipeline.edit(picture, INSTRUCTION, ORIGIN, stored_as=drawn.key)
    added = [key for key in stored_keys(admin_s3, bucket) if key not in before]
    assert sorted(added) == sorted({published.key, published.preview_key})
    assert metadata_of(admin_s3, bucket, published.key)["edit-of"] == drawn.key
    tokens = {k.rsplit("/", 1)[1].split(".")[0] for k in (drawn.key, published.key)}
    assert not [r for r in caplog.records if any(t in r.getMessage() for t in tokens)]


async def test_a_generator_that_cannot_edit_is_said_so(
    pipeline: Pipeline, admin_s3: Any, bucket: str
) -> None:
    """With a generator whose ``edits`` is None, can_edit is False and edit stores nothing."""

    class DrawOnly(PlaceholderGenerator):
        edits = None

    pipeline.generator = DrawOnly()
    assert not pipeline.can_edit
    with pytest.raises(EditUnavailable):
        await pipeline.edit(jpeg_with_gps(), INSTRUCTION, ORIGIN)
    assert stored_keys(admin_s3, bucket) == []


async def test_an_unusable_edit_result_is_not_blamed_on_the_users_picture(
    pipeline: Pipeline, admin_s3: Any, bucket: str
) -> None:
    """A generator whose edit returns no picture gives a plain ImageError, not the user's
    UserPictureError: the chat must not tell the user their picture was bad."""

    class BrokenEditor(PlaceholderGenerator):
        async def edit(self, picture: bytes, instruction: str, size: Any) -> Any:
            return GeneratedImage(b"<html>not a picture</html>")

    pipeline.generator = BrokenEditor()
    with pytest.raises(ImageError) as caught:
        await pipeline.edit(jpeg_with_gps(), INSTRUCTION, ORIGIN)
    assert not isinstance(caught.value, UserPictureError)
    assert len(stored_keys(admin_s3, bucket)) == 1  # the user's picture, kept for the lifecycle


@pytest.fixture
async def remote(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    """The pipeline, for a test that gives it a remote generator; that generator is closed after."""
    yield pipeline
    await pipeline.aclose()


@pytest.mark.parametrize("case", CASES)
async def test_a_phone_photo_is_edited_through_each_provider(
    remote: Pipeline, providers: FakeProviders, admin_s3: Any, bucket: str, case: Case
) -> None:
    """A 4000x3000 phone photo goes to each provider fitted to its rules (the stand-in refuses
    anything else), and the provider's picture is what gets published."""
    providers.script.openai_answer = "url" if case == "dall-e-2" else "b64"
    remote.generator = make_editor(case, providers)
    spec = remote.generator.edits
    assert spec is not None
    published = await remote.edit(phone_jpeg(), INSTRUCTION, ORIGIN)
    [sent] = providers.pictures
    assert max(Image.open(io.BytesIO(sent)).size) == min(4000, spec.max_side)
    assert same_pixels(
        await remote.stored_picture(published.key, ORIGIN.conversation_id), providers.script.image
    )
    edited = metadata_of(admin_s3, bucket, published.key)
    assert edited["generator"] == remote.generator.name
    assert edited["model"] == remote.generator.edit_model
    source = admin_s3.get_object(Bucket=bucket, Key=edited["edit-of"])["Body"].read()
    assert Image.open(io.BytesIO(source)).size == (4000, 3000)


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_pictures_never_reach_the_provider(
    remote: Pipeline, providers: FakeProviders, name: str
) -> None:
    """A hostile picture is refused by intake: no request reaches the provider's stand-in."""
    remote.generator = make_editor("qwen", providers)
    with pytest.raises(ImageError):
        await remote.edit(HOSTILE[name], INSTRUCTION, ORIGIN)
    assert providers.requests == [] and providers.pictures == []


async def test_an_edit_that_takes_too_long_is_a_timeout(
    remote: Pipeline, providers: FakeProviders
) -> None:
    """GENERATOR_TIMEOUT_SECONDS bounds the edit: a provider that never answers is a timeout."""
    providers.script.outcome = "hang"
    remote.generator = make_editor("qwen", providers)
    remote.generator_timeout = 0.5
    with pytest.raises(GeneratorTimeout, match=r"did not finish within 0\.5 s"):
        await remote.edit(jpeg_with_gps(), INSTRUCTION, ORIGIN)
    providers.release()


class _NoDownloads:
    """A picture source for requests that name none of DingTalk's pictures."""

    async def fetch(self, download_code: str, robot_code: str = "") -> bytes:
        raise AssertionError("nothing is downloaded for a stored picture")


async def test_a_storage_failure_on_a_quoted_picture_names_its_key_by_label(
    s3_env: dict[str, str], unused_tcp_port: int
) -> None:
    """When the bucket cannot be reached for a quoted picture, the error the bot logs names the
    picture's key by its label, never whole."""
    settings = load_settings(s3_endpoint=f"http://127.0.0.1:{unused_tcp_port}", s3_attempts=1)
    studio = Studio(Pipeline.from_settings(settings, PlaceholderGenerator()), _NoDownloads())
    key = object_keys("imagegen/", datetime.now(UTC), "png", "jpg")[0]
    request = ImageRequest(
        prompt=INSTRUCTION,
        msg_id="m1",
        conversation_id="cid-1",
        conversation_type="1",
        sender_id="u1",
        sender_staff_id="s1",
        session_webhook="",
        webhook_expires_at_ms=0,
        robot_code="",
        picture=PictureRef(stored=key.removeprefix("imagegen/")),
    )
    with pytest.raises(StorageError) as failed:
        await studio.make(request)
    assert key_label(key) in str(failed.value) and key not in str(failed.value)
