"""「我的图片」 end to end: `imgbot run`'s bot against the simulator, a real MinIO, and the index
of recent pictures in each state store (SQLite, and a real redis-server)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest

from imgbot.config.settings import load_settings
from imgbot.delivery import texts as chat_texts
from imgbot.simulator import DingTalkSimulator
from imgbot.studio.gallery import GalleryRules
from tests.bot_harness import IMAGE_RE, LINK_RE, image_replies, running_bot
from tests.polling import wait_until

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
EMPTY = chat_texts.MY_IMAGES_EMPTY.format(days=7)
_ITEM = re.compile(r"^\*\*(\d+)\.\*\* (.+)（", re.MULTILINE)


def status_of(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as answer:
        answer.read()
        return int(answer.status)


async def draw(simulator: DingTalkSimulator, prompt: str, **options: Any) -> None:
    """Ask for a picture and wait until it is answered."""
    before = len(image_replies(simulator))
    await simulator.send_text(prompt, **options)
    await wait_until(lambda: len(image_replies(simulator)) == before + 1, timeout=30)


async def ask(simulator: DingTalkSimulator, words: str, **options: Any) -> Any:
    """Send ``words`` and return the bot's answer to it."""
    before = len(simulator.replies)
    await simulator.send_text(words, **options)
    replies = await simulator.wait_for_replies(before + 1, timeout=30)
    return replies[before]


def listed(reply: Any) -> list[str]:
    """The prompts a 「我的图片」 answer lists, in order."""
    assert reply.msgtype == "markdown" and reply.title == chat_texts.MY_IMAGES_TITLE, reply.text
    items = _ITEM.findall(reply.text)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1))
    return [prompt for _, prompt in items]


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest) -> dict[str, str]:
    """The state store of the bot under test: the default SQLite file, or the session Redis."""
    if request.param == "sqlite":
        return {}
    return {"state_url": request.getfixturevalue("redis_url")}


async def test_my_images_lists_the_senders_own_newest_first(
    simulator: DingTalkSimulator, s3_env: dict[str, str], state: dict[str, str]
) -> None:
    """Each sender sees only their own pictures of the conversation they ask in, newest first,
    at most MY_IMAGES_SHOWN, each preview and original loading from storage; someone with none
    is told so in a sentence."""
    async with running_bot(
        simulator, my_images_shown=2, user_requests_per_minute=100, **state
    ) as bot:
        assert (await ask(simulator, "我的图片", sender_staff_id="alice")).text == EMPTY
        for prompt in ("猫一", "猫二", "猫三"):
            await draw(simulator, prompt, sender_staff_id="alice")
        await draw(simulator, "狗一", sender_staff_id="bob")
        await draw(simulator, "鸟一", sender_staff_id="alice", group=True)

        mine = await ask(simulator, "我的图片", sender_staff_id="alice")
        bobs = await ask(simulator, "My Images", sender_staff_id="bob")
        in_group = await ask(simulator, "最近的图？", sender_staff_id="alice", group=True)
        nobody = await ask(simulator, "我的图片", sender_staff_id="carol")
        await wait_until(lambda: bot.metrics.outcomes().get("my_images") == 5)
    assert listed(mine) == ["猫三", "猫二"]
    assert listed(bobs) == ["狗一"]
    assert listed(in_group) == ["鸟一"] and in_group.at_user_ids == ("alice",)
    assert nobody.text == EMPTY
    previews = IMAGE_RE.findall(mine.text)
    answered = {r.text.split("\n")[1]: IMAGE_RE.findall(r.text) for r in image_replies(simulator)}
    assert [urlsplit(u).path for u in previews] == [
        urlsplit(answered[f"> {prompt}"][0]).path for prompt in ("猫三", "猫二")
    ]
    links = previews + LINK_RE.findall(mine.text)
    assert len(links) == 4
    for url in links:
        assert await asyncio.to_thread(status_of, url) == 200
    assert bot.metrics.outcomes() == {"image": 5, "my_images": 5}


async def test_a_sender_dingtalk_did_not_name_has_no_list(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Messages without senderId and senderStaffId draw as usual, but their pictures are not
    recorded under the conversation: 「我的图片」 from such a sender in a group lists nothing."""
    async with running_bot(simulator, user_requests_per_minute=100) as bot:
        base = await simulator.send_text("猫一", group=True)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        nameless = {k: v for k, v in base.items() if k not in ("senderId", "senderStaffId")}
        await simulator.send_message(
            {**nameless, "msgId": "nameless-1", "text": {"content": "狗一"}}
        )
        await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=30)
        await simulator.send_message(
            {**nameless, "msgId": "nameless-2", "text": {"content": "我的图片"}}
        )
        await wait_until(lambda: bot.metrics.outcomes().get("my_images") == 1, timeout=30)
        named = await ask(simulator, "我的图片", group=True)
    assert simulator.replies[-2].text == EMPTY
    assert listed(named) == ["猫一"]


async def test_my_images_counts_against_the_rate(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Asking for one's pictures is a request like any other: past the rate, the slow-down
    sentence instead."""
    async with running_bot(simulator, user_requests_per_minute=1) as bot:
        await draw(simulator, "猫一")
        answer = await ask(simulator, "我的图片")
        await wait_until(lambda: bot.metrics.outcomes().get("rate_limited") == 1)
    assert answer.text == chat_texts.RATE_LIMITED


async def test_help_mentions_my_images(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """The help answer tells how to see one's recent pictures; a drawing that merely mentions
    the words is drawn."""
    async with running_bot(simulator):
        help_text = (await ask(simulator, "帮助")).text
        await draw(simulator, "画一张我的图片风格的猫")
    assert "「我的图片」" in help_text


def test_entries_end_before_their_objects() -> None:
    """An index entry is listed for less than the retention, so its objects are still there."""
    rules = GalleryRules.from_settings(
        load_settings(s3_access_key="a", s3_secret_key="b", image_retention_days=1)
    )
    assert 0 < rules.max_age_seconds < 86_400
