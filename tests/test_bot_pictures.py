"""Pictures from users, end to end: the real SDK, the simulator's file API and a real MinIO."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.models import EditSpec, GeneratedImage, Size
from imgbot.simulator import DingTalkSimulator
from tests import hostile
from tests.bot_harness import IMAGE_RE, LINK_RE, image_replies, running_bot
from tests.images import decompression_bomb, encode, photo_like, same_pixels
from tests.polling import wait_until

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
SEA = "背景换成海边"


class RecordingGenerator(PlaceholderGenerator):
    """The offline generator, recording the pictures it was asked to edit and the prompts."""

    def __init__(self, *, can_edit: bool = True) -> None:
        self.edited: list[tuple[bytes, str]] = []
        self.drawn: list[str] = []
        if not can_edit:
            self.edits: EditSpec | None = None

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        self.drawn.append(prompt)
        return await super().generate(prompt, size)

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        self.edited.append((picture, instruction))
        return await super().edit(picture, instruction, size)


def picture(seed: int = 1) -> bytes:
    """A small photo-like PNG."""
    return encode(photo_like(160, seed), "PNG")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bytes(answer.read())


async def edited_reply(simulator: DingTalkSimulator, count: int) -> Any:
    """The ``count``-th reply, which must be an image reply."""
    replies = await simulator.wait_for_replies(count, timeout=30)
    answer = replies[count - 1]
    assert answer.msgtype == "markdown" and IMAGE_RE.search(answer.text), answer.text
    return answer


async def test_rich_text_edit(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """Text and picture in one message: the picture sent is edited with the text, published
    under the heading that says it was changed."""
    generator = RecordingGenerator()
    sent = picture()
    async with running_bot(simulator, generator):
        await simulator.send_rich_text([SEA, sent])
        answer = await edited_reply(simulator, 2)
    assert simulator.replies[0].text == chat_texts.PROGRESS
    [(got, instruction)] = generator.edited
    assert instruction == SEA and same_pixels(got, sent)
    assert generator.drawn == []
    assert answer.title == "图片已修改" and answer.text.startswith("#### 图片已修改")
    original = LINK_RE.search(answer.text)
    assert original and await asyncio.to_thread(fetch, original.group(1))


async def test_group_rich_text_edit_mentions_sender(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """In a group, an @mention with a picture (richText) is edited and the sender @-mentioned."""
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        await simulator.send_rich_text([" ", SEA, picture()], group=True, sender_staff_id="s42")
        answer = await edited_reply(simulator, 2)
    assert answer.at_user_ids == ("s42",) and "@s42" in answer.text
    assert [instruction for _, instruction in generator.edited] == [SEA]


async def test_quoted_picture_edit(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """A picture alone gets the how-to hint; quoting it with an instruction edits it."""
    generator = RecordingGenerator()
    sent = picture(2)
    async with running_bot(simulator, generator):
        message = await simulator.send_picture(sent)
        [hint] = await simulator.wait_for_replies(1, timeout=30)
        assert hint.text == chat_texts.PICTURE_ALONE
        await simulator.send_quote(SEA, simulator.quote_of(message))
        await edited_reply(simulator, 3)
    [(got, instruction)] = generator.edited
    assert instruction == SEA and same_pixels(got, sent)


async def test_quoted_picture_content_as_json_string(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """repliedMsg.content sent as a JSON string is understood like an object."""
    import json

    generator = RecordingGenerator()
    sent = picture(3)
    async with running_bot(simulator, generator):
        message = await simulator.send_picture(sent)
        await simulator.wait_for_replies(1, timeout=30)
        quoted = simulator.quote_of(message)
        quoted["content"] = json.dumps(quoted["content"])
        await simulator.send_quote(SEA, quoted)
        await edited_reply(simulator, 3)
    assert same_pixels(generator.edited[0][0], sent)


@pytest.mark.parametrize("reply_style", ["markdown", "image"])
async def test_quoted_bot_image_edit(
    simulator: DingTalkSimulator, s3_env: dict[str, str], reply_style: str
) -> None:
    """Quoting the bot's own image reply edits that image: the stored original (Markdown reply,
    found by its link's key) or the native image's download (REPLY_STYLE=image)."""
    generator = RecordingGenerator()
    async with running_bot(simulator, generator, reply_style=reply_style):
        await simulator.send_text("帮我画一只可爱的小猫")
        count = 2 if reply_style == "markdown" else 3  # progress, [native image,] Markdown
        replies = await simulator.wait_for_replies(count, timeout=30)
        drawn = replies[1]
        if reply_style == "markdown":
            shown = LINK_RE.search(drawn.text)  # the original's link
            assert shown is not None
            url = shown.group(1)
        else:
            assert drawn.msgtype == "image"
            url = drawn.text
        await simulator.send_quote("加一顶帽子", simulator.quote_of_reply(drawn))
        await wait_until(lambda: len(generator.edited) == 1, timeout=30)
        await simulator.wait_for_replies(2 * count, timeout=30)
    [(got, instruction)] = generator.edited
    assert instruction == "加一顶帽子"
    assert same_pixels(got, await asyncio.to_thread(fetch, url))
    # A Markdown reply was found in our bucket; nothing was downloaded from DingTalk for it.
    assert (simulator.files.calls == []) == (reply_style == "markdown")


def bucket_keys(admin_s3: Any, bucket: str) -> list[str]:
    """Every object key in the test's bucket."""
    listing = admin_s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def key_in(url: str, bucket: str) -> str:
    """The object key a path-style link to ``bucket`` names."""
    return unquote(urlsplit(url).path).split(f"/{bucket}/", 1)[1]


async def test_a_picture_is_edited_only_from_its_own_conversation(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mallory quoting text with a link to Alice's picture from another conversation is told it
    is unavailable: no edit, nothing stored. Alice quoting it in her conversation edits it; no
    copy is stored and the edit's ``edit-of`` names her picture's key. The studio's INFO logs
    name it by label only."""
    caplog.set_level(logging.INFO)
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        await simulator.send_text("帮我画一只可爱的小猫", sender_staff_id="alice")
        drawn = (await simulator.wait_for_replies(2, timeout=30))[1]
        shown = LINK_RE.search(drawn.text)
        assert shown is not None
        alice_key = key_in(shown.group(1), bucket)
        before = await asyncio.to_thread(bucket_keys, admin_s3, bucket)
        stolen = {"msgType": "text", "content": {"text": f"看这张 {shown.group(1)}"}}
        await simulator.send_quote("加一顶帽子", stolen, sender_staff_id="mallory")
        told = (await simulator.wait_for_replies(4, timeout=30))[3]
        assert told.text == chat_texts.PICTURE_EXPIRED
        assert generator.edited == []
        assert await asyncio.to_thread(bucket_keys, admin_s3, bucket) == before
        await simulator.send_quote(
            "加一顶帽子", simulator.quote_of_reply(drawn), sender_staff_id="alice"
        )
        edited = await edited_reply(simulator, 6)
    assert [instruction for _, instruction in generator.edited] == ["加一顶帽子"]
    result = LINK_RE.search(edited.text)
    assert result is not None
    head = admin_s3.head_object(Bucket=bucket, Key=key_in(result.group(1), bucket))
    assert unquote(head["Metadata"]["edit-of"]) == alice_key
    after = await asyncio.to_thread(bucket_keys, admin_s3, bucket)
    added = [key for key in after if key not in before]
    operations = [admin_s3.head_object(Bucket=bucket, Key=k)["Metadata"] for k in added]
    assert added and all(m["operation"] == "edit" for m in operations)  # no copy: no upload
    token = alice_key.rsplit("/", 1)[1].split(".")[0]
    studio = [r for r in caplog.records if r.name.startswith("imgbot.studio")]
    assert any("not readable (NotYours)" in r.getMessage() for r in studio)
    assert not [r for r in studio if r.levelno >= logging.INFO and token in r.getMessage()]


async def test_quote_without_content_gets_hint(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """isReplyMsg with only originalMsgId: a hint to send text and picture together, no draw."""
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        await simulator.send_quote(SEA, None)
        [answer] = await simulator.wait_for_replies(1, timeout=30)
    assert answer.text == chat_texts.QUOTE_UNREADABLE
    assert generator.drawn == [] and generator.edited == []


async def test_generator_without_editing_says_so(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """With a generator that cannot edit, a picture request is answered that editing is off."""
    generator = RecordingGenerator(can_edit=False)
    async with running_bot(simulator, generator):
        await simulator.send_rich_text([SEA, picture()])
        [answer] = await simulator.wait_for_replies(1, timeout=30)
    assert answer.text == chat_texts.EDIT_UNAVAILABLE
    assert simulator.files.calls == []


def _svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>'


def _html_as_png() -> bytes:
    return b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>"


HOSTILE = {
    "not-an-image": (lambda: b"hello, this is text", chat_texts.NOT_AN_IMAGE),
    "svg": (_svg, chat_texts.NOT_AN_IMAGE),
    "html-disguised": (_html_as_png, chat_texts.NOT_AN_IMAGE),
    "truncated": (hostile.png_cut_in_pixels, chat_texts.NOT_AN_IMAGE),
    "bomb": (decompression_bomb, chat_texts.PICTURE_TOO_MANY_PIXELS),
    "too-large": (lambda: encode(photo_like(512, 4), "PNG"), chat_texts.PICTURE_TOO_LARGE),
    "empty": (lambda: b"", chat_texts.PICTURE_EMPTY),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_pictures_get_one_clear_answer(
    simulator: DingTalkSimulator, s3_env: dict[str, str], name: str
) -> None:
    """Each bad picture gets its own short answer after the progress reply, no generator call,
    and the bot still draws the next request."""
    make, expected = HOSTILE[name]
    generator = RecordingGenerator()
    async with running_bot(simulator, generator, max_image_bytes=100_000) as bot:
        await simulator.send_rich_text([SEA, make()])
        progress, answer = await simulator.wait_for_replies(2, timeout=30)
        assert progress.text == chat_texts.PROGRESS and answer.text == expected
        await simulator.send_text("帮我画一只可爱的小猫")
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        assert bot.connected
    assert generator.edited == []
    assert len(simulator.replies) == 4


async def test_expired_download_code(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """A picture whose download code expired before the quote gets the "expired" answer."""
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        message = await simulator.send_picture(picture())
        await simulator.wait_for_replies(1, timeout=30)
        simulator.expire_picture(str(message["content"]["downloadCode"]))  # type: ignore[index]
        await simulator.send_quote(SEA, simulator.quote_of(message))
        replies = await simulator.wait_for_replies(3, timeout=30)
    assert replies[-1].text == chat_texts.PICTURE_EXPIRED
    assert generator.edited == []


async def test_picture_download_code_only(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A richText whose picture carries only pictureDownloadCode: a clear answer, nothing
    downloaded, nothing drawn from the text alone."""
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        base = await simulator.send_rich_text([SEA, picture()])
        await edited_reply(simulator, 2)
        items = [{"text": SEA}, {"pictureDownloadCode": "pdc-only", "type": "picture"}]
        await simulator.send_message({**base, "msgId": "pdc-only", "content": {"richText": items}})
        replies = await simulator.wait_for_replies(3, timeout=30)
    assert replies[-1].text == chat_texts.PICTURE_MISSING
    assert len(simulator.files.calls) == 1 and generator.drawn == []


@pytest.mark.parametrize("kind", ["openai", "dashscope"])
async def test_edit_through_provider_gets_the_downloaded_picture(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: Any, kind: str
) -> None:
    """Through each provider's edit API, the picture the provider received is the one the
    user sent (same pixels), and its answer is published as the reply's image."""
    sent = encode(photo_like(640, 6).resize((640, 512)), "PNG")  # within every edit spec
    async with running_bot(simulator, **providers.settings_for(kind)):
        await simulator.send_rich_text([SEA, sent])
        await edited_reply(simulator, 2)
    [received] = providers.pictures
    assert looks_the_same(received, sent)


def looks_the_same(a: bytes, b: bytes) -> bool:
    """Same size and nearly the same pixels (a fitted copy may be re-encoded as JPEG)."""
    import io

    from PIL import Image, ImageChops, ImageStat

    x, y = (Image.open(io.BytesIO(d)).convert("RGB") for d in (a, b))
    if x.size != y.size:
        return False
    return max(ImageStat.Stat(ImageChops.difference(x, y)).mean) < 4


async def test_phone_photo_is_edited(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """A 4000x3000 phone photo (JPEG) is downloaded, fitted and edited with default limits."""
    import io

    from PIL import Image

    photo = encode(photo_like(1000, 7).resize((4000, 3000)), "JPEG", quality=90)
    generator = RecordingGenerator()
    async with running_bot(simulator, generator):
        await simulator.send_rich_text([SEA, photo])
        await edited_reply(simulator, 2)
    [(got, _)] = generator.edited
    width, height = Image.open(io.BytesIO(got)).size
    assert max(width, height) <= 1536 and abs(width / height - 4 / 3) < 0.01
