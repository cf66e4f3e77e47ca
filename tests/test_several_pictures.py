"""Several pictures from one message (「画4张」): the provider's n or several calls, one answer,
the per-message maximum, the sender's rate, and ``imgbot draw --json``."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from imgbot.delivery import texts
from imgbot.delivery.markdown import MAX_MARKDOWN_BYTES, images_reply
from imgbot.errors import GeneratorError
from imgbot.generators.base import PartlyRefused
from imgbot.generators.dashscope import DashScopeGenerator
from imgbot.generators.http import HttpLimits
from imgbot.generators.openai_images import OpenAIImagesGenerator
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.models import GeneratedImage, Link, Published, Size
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import IMAGE_RE, LINK_RE, image_replies, running_bot
from tests.conftest import CliRunner, set_up_bucket
from tests.fake_providers import VALID_KEY, FakeProviders
from tests.polling import wait_until

FOUR_CATS = "画4张小猫"
LIMITS = HttpLimits(call_timeout=5, total_timeout=15, max_bytes=20 * 2**20, attempts=1)


class CountingGenerator(PlaceholderGenerator):
    """The offline generator, counting its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        self.calls.append(prompt)
        return await super().generate(prompt, size)


class FailsFromThirdCall(CountingGenerator):
    """Draws twice, then fails as a provider outage would."""

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        if len(self.calls) >= 2:
            raise GeneratorError("provider down", reason="down")
        return await super().generate(prompt, size)


def fetch_status(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"]


async def assert_loadable(urls: list[str]) -> None:
    for url in urls:
        status, content_type = await asyncio.to_thread(fetch_status, url)
        assert status == 200 and content_type.startswith("image/")


def openai(providers: FakeProviders, model: str = "gpt-image-1") -> OpenAIImagesGenerator:
    return OpenAIImagesGenerator(
        api_key=SecretStr(VALID_KEY), base_url=f"{providers.url}/v1", model=model, limits=LIMITS
    )


def dashscope(providers: FakeProviders, model: str = "wan2.2-t2i-flash") -> DashScopeGenerator:
    return DashScopeGenerator(
        api_key=SecretStr(VALID_KEY),
        base_url=providers.url,
        model=model,
        limits=LIMITS,
        poll_interval=0.01,
    )


# The generators against the stand-ins ---------------------------------------------------------


@pytest.mark.parametrize("answer", ["b64", "url"])
async def test_openai_asks_for_several_in_one_call(providers: FakeProviders, answer: Any) -> None:
    """generate_many(4) is one images call with n=4 and gives four pictures."""
    providers.script.openai_answer = answer
    generator = openai(providers)
    try:
        images = await generator.generate_many("小猫", Size(1024, 1024), 4)
    finally:
        await generator.aclose()
    assert [image.data for image in images] == [providers.script.image] * 4
    [call] = providers.api_requests("POST")
    assert call.body["n"] == 4 and call.body["prompt"] == "小猫"


async def test_dashscope_asks_for_several_in_one_task(providers: FakeProviders) -> None:
    """generate_many(4) submits one task with parameters.n=4 and downloads its four results."""
    generator = dashscope(providers)
    try:
        images = await generator.generate_many("小猫", Size(1024, 1024), 4)
    finally:
        await generator.aclose()
    assert len(images) == 4 and len(providers.downloads()) == 4
    [submit] = providers.api_requests("POST")
    assert submit.body["parameters"]["n"] == 4


@pytest.mark.parametrize(
    ("make", "n", "words"),
    [
        (dashscope, 5, "from 1 to 4"),
        (lambda p: dashscope(p, "qwen-image"), 2, "from 1 to 1"),
        (openai, 11, "from 1 to 10"),
    ],
    ids=["wan-5", "qwen-image-2", "gpt-image-11"],
)
async def test_stand_ins_refuse_n_past_the_documented_bounds(
    providers: FakeProviders, make: Any, n: int, words: str
) -> None:
    """An n past the provider's documented bounds is answered with the provider's own error."""
    generator = make(providers)
    try:
        with pytest.raises(GeneratorError) as caught:
            await generator.generate_many("小猫", Size(1024, 1024), n)
    finally:
        await generator.aclose()
    assert words in str(caught.value)


async def test_generators_know_their_n(providers: FakeProviders) -> None:
    """max_n: wan 4, qwen-image 1, GPT image models 10, dall-e-3 1, the placeholder 1."""
    made = [
        dashscope(providers),
        dashscope(providers, "qwen-image-plus"),
        openai(providers),
        openai(providers, "dall-e-3"),
    ]
    assert [g.max_n for g in made] == [4, 1, 10, 1]
    assert PlaceholderGenerator().max_n == 1
    for generator in made:
        await generator.aclose()


# The Markdown of several pictures ----------------------------------------------------------------


def fake_published(number: int, url_chars: int) -> Published:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    url = f"https://s3.example.com/imagegen/{number}.png?" + "x" * url_chars
    link = Link(url, expires)
    return Published(f"k{number}", f"p{number}", link, link)


def test_several_pictures_markdown_has_each_preview_and_original() -> None:
    """Each picture has its preview and its 查看原图 link; the note and escaped prompt show."""
    pictures = [fake_published(n, 400) for n in range(1, 5)]
    text = images_reply(pictures, "画4张[x](y)", note="说明。")
    assert len(IMAGE_RE.findall(text)) == 4 and len(LINK_RE.findall(text)) == 4
    assert "说明。" in text and "[x](y)" not in text
    for number in range(1, 5):
        assert f"[查看原图 {number}](https://s3.example.com/imagegen/{number}.png?" in text


def test_several_pictures_markdown_stays_within_dingtalk_limits() -> None:
    """Links too long for every preview keep their link only, then are counted, within budget."""
    pictures = [fake_published(n, 1800) for n in range(1, 11)]
    text = images_reply(pictures, "画10张" * 100)
    assert len(text.encode()) <= MAX_MARKDOWN_BYTES
    shown = len(LINK_RE.findall(text))
    assert 0 < len(IMAGE_RE.findall(text)) < shown < 10
    assert texts.LINKS_LEFT_OUT.format(count=10 - shown) in text


# Through imgbot run and the simulator ------------------------------------------------------------


@pytest.mark.minio
@pytest.mark.e2e
async def test_four_pictures_arrive_in_one_answer(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """「画4张小猫」: the placeholder is called 4 times; one answer holds 4 loadable pictures."""
    generator = CountingGenerator()
    async with running_bot(simulator, generator=generator) as bot:
        await simulator.send_text(FOUR_CATS)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
    progress, answer = simulator.replies
    assert progress.text == texts.PROGRESS
    assert answer.title == texts.SEVERAL_TITLE.format(count=4)
    previews, originals = IMAGE_RE.findall(answer.text), LINK_RE.findall(answer.text)
    assert len(previews) == 4 and len(originals) == 4 and len(set(originals)) == 4
    assert generator.calls == [FOUR_CATS] * 4  # the words reach the generator unchanged
    await assert_loadable(previews + originals)


@pytest.mark.minio
@pytest.mark.e2e
async def test_pictures_made_before_a_failure_are_sent(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A call failing after two pictures: the answer carries those two and says 2 are missing."""
    async with running_bot(simulator, generator=FailsFromThirdCall()) as bot:
        await simulator.send_text(FOUR_CATS)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
    answer = simulator.replies[-1]
    assert answer.title == texts.SEVERAL_TITLE.format(count=2)
    assert len(IMAGE_RE.findall(answer.text)) == 2
    assert texts.SOME_MISSING.format(missing=2) in answer.text


@pytest.mark.minio
@pytest.mark.e2e
async def test_a_count_over_the_maximum_is_clipped(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """「画5张」 with MAX_IMAGES_PER_REQUEST=2 makes 2 and says the maximum."""
    async with running_bot(simulator, max_images_per_request=2) as bot:
        await simulator.send_text("画5张山")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
    answer = simulator.replies[-1]
    assert len(IMAGE_RE.findall(answer.text)) == 2
    assert texts.FEWER_MAX.format(count=2) in answer.text


@pytest.mark.minio
@pytest.mark.e2e
async def test_the_rate_limit_leaves_part_of_the_pictures(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Each picture counts against the rate: 4 asked with 3 left gives 3 and says why; the
    next message is refused as over the limit."""
    async with running_bot(simulator, user_requests_per_minute=3) as bot:
        await simulator.send_text(FOUR_CATS)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
        await simulator.send_text("画一只狗")
        await wait_until(lambda: len(simulator.replies) == 3, timeout=30)
    answer = image_replies(simulator)[0]
    assert len(IMAGE_RE.findall(answer.text)) == 3
    assert texts.FEWER_RATE.format(count=3) in answer.text
    assert simulator.replies[-1].text == texts.RATE_LIMITED


@pytest.mark.minio
@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["dashscope", "openai"])
async def test_the_providers_n_is_used(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders, kind: Any
) -> None:
    """With a provider that has n, 「画4张」 is one provider call asking for 4 pictures."""
    providers.script.running_polls = 0
    async with running_bot(simulator, **providers.settings_for(kind)) as bot:
        await simulator.send_text(FOUR_CATS)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
    [call] = providers.api_requests("POST")
    sent = call.body["parameters"]["n"] if kind == "dashscope" else call.body["n"]
    assert sent == 4 and json.dumps(call.body, ensure_ascii=False).count(FOUR_CATS) == 1
    assert len(IMAGE_RE.findall(simulator.replies[-1].text)) == 4


@pytest.mark.minio
@pytest.mark.e2e
async def test_native_images_one_per_picture_then_one_caption(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """REPLY_STYLE=image: one native image per picture, then one caption with every link."""
    async with running_bot(simulator, reply_style="image") as bot:
        await simulator.send_text("来三张小猫")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=60)
    images = [r for r in simulator.replies if r.msgtype == "image"]
    captions = [r for r in simulator.replies if r.msgtype == "markdown"]
    assert len(images) == 3 and len(captions) == 1
    assert len(LINK_RE.findall(captions[0].text)) == 3 and "![" not in captions[0].text
    await assert_loadable([image.text for image in images])


# imgbot draw ----------------------------------------------------------------------------------

ONE_PICTURE_FIELDS = {
    "key",
    "preview_key",
    "url",
    "original_url",
    "expires_at",
    "markdown",
    "prompt",
    "generator",
}


@pytest.mark.minio
def test_draw_json_lists_several_images(s3_env: dict[str, str], cli_here: CliRunner) -> None:
    """draw 「画3张猫」 --json: images holds 3 pictures with one picture's fields, all loadable;
    the first picture's fields stay at the top level (a script reading one picture still works),
    the Markdown there showing all three."""
    set_up_bucket()
    done = cli_here("draw", "画3张猫", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["prompt"] == "画3张猫" and document["generator"] == "placeholder"
    images = document["images"]
    assert len(images) == 3 and len({image["key"] for image in images}) == 3
    assert set(document) == ONE_PICTURE_FIELDS | {"images"}
    first = {name: document[name] for name in images[0] if name != "markdown"}
    assert first == {name: value for name, value in images[0].items() if name != "markdown"}
    assert all(image["url"] in document["markdown"] for image in images)
    for image in images:
        assert set(image) == ONE_PICTURE_FIELDS - {"prompt", "generator"}
        for url in (image["url"], image["original_url"]):
            status, _ = fetch_status(url)
            assert status == 200


@pytest.mark.minio
def test_draw_json_of_one_picture_keeps_its_fields(
    s3_env: dict[str, str], cli_here: CliRunner
) -> None:
    """draw of one picture prints exactly the one-picture fields, no images list."""
    set_up_bucket()
    done = cli_here("draw", "一张四只猫的图", "--json")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == ONE_PICTURE_FIELDS


@pytest.mark.minio
def test_draw_clips_to_the_maximum(
    s3_env: dict[str, str], cli_here: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """draw 「画6张」 with MAX_IMAGES_PER_REQUEST=2 draws 2 and says so on stderr."""
    monkeypatch.setenv("MAX_IMAGES_PER_REQUEST", "2")
    set_up_bucket()
    done = cli_here("draw", "画6张", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["images"]) == 2
    assert "MAX_IMAGES_PER_REQUEST=2" in done.stderr


class ModeratedFromThirdCall(CountingGenerator):
    """Draws twice, then is refused for the content, as DataInspectionFailed would be."""

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        if len(self.calls) >= 2:
            raise GeneratorError("DataInspectionFailed", reason="inappropriate", moderated=True)
        return await super().generate(prompt, size)


async def test_dashscope_says_when_it_refused_some_results(providers: FakeProviders) -> None:
    """A task that SUCCEEDED with 1 of its 4 results refused for content raises PartlyRefused
    holding the 3 pictures made."""
    providers.script.refused_results = 1
    generator = dashscope(providers)
    try:
        with pytest.raises(PartlyRefused) as caught:
            await generator.generate_many("小猫", Size(1024, 1024), 4)
    finally:
        await generator.aclose()
    assert caught.value.moderated and len(caught.value.images) == 3
    assert len(providers.downloads()) == 3


@pytest.mark.minio
@pytest.mark.e2e
@pytest.mark.parametrize("where", ["calls", "task"])
async def test_pictures_made_before_a_refusal_say_the_rest_was_refused(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders, where: str
) -> None:
    """Two pictures made, two refused for content (later calls, or results of one DashScope
    task): the answer carries the two, says the rest did not pass review (not "try again"), and
    the message counts as moderated."""
    if where == "calls":
        settings: dict[str, Any] = {"generator": ModeratedFromThirdCall()}
    else:
        providers.script.refused_results = 2
        settings = {**providers.settings_for("dashscope"), "dashscope_model": "wan2.2-t2i-flash"}
    async with running_bot(simulator, **settings) as bot:
        await simulator.send_text(FOUR_CATS)
        await wait_until(lambda: bot.metrics.outcomes() == {"moderated": 1}, timeout=60)
    answer = simulator.replies[-1]
    assert len(IMAGE_RE.findall(answer.text)) == 2
    assert texts.SOME_REFUSED.format(missing=2) in answer.text
    assert texts.SOME_MISSING.format(missing=2) not in answer.text


@pytest.mark.minio
def test_draw_prints_what_was_made_before_a_failure(
    s3_env: dict[str, str],
    cli_here: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    providers_thread: Any,
) -> None:
    """draw 「画4张」 --json whose DashScope task refuses 2 of 4 results prints the 2 made (the
    images shape), says on stderr in a line what failed, and exits 1."""
    fake = providers_thread.fake
    fake.script.running_polls = 0
    fake.script.refused_results = 2
    for key, value in fake.env_for("dashscope").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DASHSCOPE_MODEL", "wan2.2-t2i-flash")
    set_up_bucket()
    done = cli_here("draw", FOUR_CATS, "--json")
    assert done.returncode == 1
    images = json.loads(done.stdout)["images"]
    assert len(images) == 2
    for image in images:
        assert fetch_status(image["original_url"])[0] == 200
    line = done.stderr.strip().splitlines()[-1]  # after the generator's logged warning
    assert line.startswith("imgbot: 2 of 4 pictures made; then: ") and "DataInspection" in line
