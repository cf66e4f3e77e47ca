"""The shape the words ask for, end to end: `imgbot run` against the simulator (the real
dingtalk-stream SDK, a real MinIO) and `imgbot draw`, with the provider stand-ins."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request

import pytest
from PIL import Image

from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import LINK_RE, image_replies, running_bot
from tests.conftest import CliRunner, set_up_bucket
from tests.fake_providers import FakeProviders, FakeProvidersThread
from tests.polling import wait_until

pytestmark = [pytest.mark.minio]
SYNC = "/api/v1/services/aigc/multimodal-generation/generation"


def picture_size(url: str) -> tuple[int, int]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return Image.open(io.BytesIO(answer.read())).size


@pytest.mark.e2e
async def test_bot_asks_dashscope_for_the_shape_of_the_words(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """Through `imgbot run`, 横版 / 手机壁纸 / no shape word become wan2.6-t2i's 16:9, 9:16 and
    default sizes, and the words reach DashScope as they were typed."""
    prompts = {
        "画一张横版的海边日落": "1696*960",
        "手机壁纸，竖版": "960*1696",
        "一只猫": "1280*1280",
    }
    async with running_bot(simulator, **providers.settings_for("dashscope")):
        for number, prompt in enumerate(prompts, 1):
            await simulator.send_text(prompt, sender_staff_id=f"s{number}")
        await wait_until(lambda: len(image_replies(simulator)) == 3, timeout=40)
    sent = {
        r.body["input"]["messages"][0]["content"][0]["text"]: r.body["parameters"]["size"]
        for r in providers.api_requests("POST")
        if r.path == SYNC
    }
    assert sent == prompts


@pytest.mark.e2e
async def test_bot_placeholder_draws_image_size_area_in_the_shape(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """With the placeholder, 「宽屏」 makes the stored original 1360x768: IMAGE_SIZE's area at
    16:9."""
    async with running_bot(simulator):
        await simulator.send_text("宽屏的城市夜景")
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
    [answer] = image_replies(simulator)
    original = LINK_RE.search(answer.text)
    assert original is not None
    assert await asyncio.to_thread(picture_size, original.group(1)) == (1360, 768)


def test_cli_draw_asks_gpt_image_for_the_portrait_size(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    providers_thread: FakeProvidersThread,
    cli_here: CliRunner,
) -> None:
    """`imgbot draw "手机壁纸，竖版 星空"` asks gpt-image-2 (the default model) for 1024x1536 with
    the words unchanged."""
    fake = providers_thread.fake
    for key, value in fake.env_for("openai").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OPENAI_IMAGE_MODEL")
    set_up_bucket()
    done = cli_here("draw", "手机壁纸，竖版 星空", "--json")
    assert done.returncode == 0, done.stderr
    [request] = fake.api_requests("POST")
    assert request.body["model"] == "gpt-image-2"
    assert request.body["prompt"] == "手机壁纸，竖版 星空" and request.body["size"] == "1024x1536"


def test_cli_draw_placeholder_in_square(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """`imgbot draw` with the placeholder and IMAGE_SIZE=1536x1024 draws 「方图」 as 1248x1248."""
    monkeypatch.setenv("IMAGE_SIZE", "1536x1024")
    set_up_bucket()
    done = cli_here("draw", "一张方图，小狗", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert picture_size(result["original_url"]) == (1248, 1248)


@pytest.mark.e2e
async def test_help_says_how_to_ask_for_a_shape(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """The help answer names the shape words (横版, 竖版, 方图, 16:9)."""
    async with running_bot(simulator):
        await simulator.send_text("帮助")
        [reply] = await simulator.wait_for_replies(1, timeout=30)
    assert all(word in reply.text for word in ("横版", "竖版", "方图", "16:9"))
