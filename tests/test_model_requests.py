"""What imgbot asks each model for: the size nearest the words' aspect, and each model's options,
shown as the request bodies the provider stand-ins receive (and accept by their documented rules).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from imgbot.chat.aspect import LANDSCAPE, PORTRAIT, SQUARE
from imgbot.config.settings import load_settings
from imgbot.errors import ConfigError
from imgbot.generators import build_generator
from imgbot.generators.dashscope import DashScopeGenerator
from imgbot.generators.http import HttpLimits
from imgbot.generators.openai_images import OpenAIImagesGenerator
from imgbot.generators.sizes import SizeRule, wanted_size
from imgbot.models import Aspect, Size
from tests.fake_providers import VALID_KEY, FakeProviders

PROMPT = "画一张横版的海边日落"
LIMITS = HttpLimits(call_timeout=5, total_timeout=15, max_bytes=20 * 2**20, attempts=1)
IMAGE_SIZE = Size(1024, 1024)
TASK = "/api/v1/services/aigc/text2image/image-synthesis"
SYNC = "/api/v1/services/aigc/multimodal-generation/generation"


async def dashscope_draw(
    providers: FakeProviders, model: str, aspect: Aspect | None, **options: Any
) -> Any:
    """Draw with ``model`` for ``aspect`` (IMAGE_SIZE, unless ``size`` replaces it); return the
    one drawing request the stand-in got."""
    image_size = options.pop("size", IMAGE_SIZE)
    generator = DashScopeGenerator(
        api_key=SecretStr(VALID_KEY),
        base_url=providers.url,
        model=model,
        limits=LIMITS,
        poll_interval=0.01,
        **options,
    )
    try:
        await generator.generate(PROMPT, wanted_size(image_size, aspect))
    finally:
        await generator.aclose()
    [request] = providers.api_requests("POST")
    return request


async def openai_draw(
    providers: FakeProviders, model: str, wanted: Size, **options: Any
) -> dict[str, Any]:
    """Draw with ``model`` at ``wanted``; return the body the stand-in got."""
    generator = OpenAIImagesGenerator(
        api_key=SecretStr(VALID_KEY),
        base_url=f"{providers.url}/v1",
        model=model,
        limits=LIMITS,
        **options,
    )
    try:
        await generator.generate(PROMPT, wanted)
    finally:
        await generator.aclose()
    [request] = providers.api_requests("POST")
    body: dict[str, Any] = request.body
    return body


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [
        ("wan2.6-t2i", None, "1280*1280"),
        ("wan2.6-t2i", LANDSCAPE, "1696*960"),
        ("wan2.6-t2i", PORTRAIT, "960*1696"),
        ("wan2.6-t2i", Aspect(4, 3), "1472*1104"),
        ("wan2.6-t2i", Aspect(21, 9), "1696*960"),
        ("wan2.5-t2i-preview", LANDSCAPE, "1696*960"),
        ("wan2.2-t2i-flash", None, "1024*1024"),
        ("wan2.2-t2i-flash", LANDSCAPE, "1360*768"),
        ("wan2.2-t2i-flash", PORTRAIT, "768*1360"),
        ("qwen-image-plus", None, "1328*1328"),
        ("qwen-image-plus", LANDSCAPE, "1664*928"),
        ("qwen-image-max", PORTRAIT, "928*1664"),
        ("qwen-image", Aspect(4, 3), "1472*1104"),
        ("qwen-image-plus", Aspect(3, 4), "1104*1472"),
        ("qwen-image-2.0", None, "1024*1024"),
        ("qwen-image-2.0-pro", LANDSCAPE, "1360*768"),
    ],
)
async def test_dashscope_size_for_each_model(
    providers: FakeProviders, model: str, aspect: Aspect | None, size: str
) -> None:
    """Each DashScope family is asked for the size it takes nearest the aspect (IMAGE_SIZE when
    the words gave none and the model takes it), at its own endpoint; the stand-in accepts it."""
    request = await dashscope_draw(providers, model, aspect)
    assert request.body["parameters"]["size"] == size
    task = model.startswith(("wan2.5", "wan2.2"))
    assert request.path == (TASK if task else SYNC)
    assert ("X-DashScope-Async" in request.headers) == task


async def test_dashscope_sync_body(providers: FakeProviders) -> None:
    """wan2.6-t2i gets one user message holding the words unchanged, and the options in
    parameters, negative_prompt among them."""
    request = await dashscope_draw(
        providers, "wan2.6-t2i", LANDSCAPE, negative_prompt="低分辨率", watermark=True
    )
    assert request.body == {
        "model": "wan2.6-t2i",
        "input": {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]},
        "parameters": {
            "size": "1696*960",
            "n": 1,
            "prompt_extend": True,
            "watermark": True,
            "negative_prompt": "低分辨率",
        },
    }


async def test_dashscope_task_body(providers: FakeProviders) -> None:
    """wan2.2 gets the words unchanged as input.prompt, negative_prompt beside them in input,
    and prompt_extend and watermark in parameters."""
    request = await dashscope_draw(
        providers, "wan2.2-t2i-flash", None, negative_prompt="文字模糊", prompt_extend=False
    )
    assert request.body == {
        "model": "wan2.2-t2i-flash",
        "input": {"prompt": PROMPT, "negative_prompt": "文字模糊"},
        "parameters": {"size": "1024*1024", "n": 1, "prompt_extend": False, "watermark": False},
    }


async def test_dashscope_large_image_size_is_brought_within_range(
    providers: FakeProviders,
) -> None:
    """An IMAGE_SIZE a model does not take becomes the nearest size it does (wan2.2's sides stop
    at 1440 px)."""
    request = await dashscope_draw(providers, "wan2.2-t2i-flash", None, size=Size(2048, 2048))
    assert request.body["parameters"]["size"] == "1440*1440"


GPT_OPTIONS = {"quality": "medium", "output_format": "jpeg", "output_compression": 90}


@pytest.mark.parametrize(
    ("aspect", "image_size", "size"),
    [
        (None, IMAGE_SIZE, "1024x1024"),
        (LANDSCAPE, IMAGE_SIZE, "1536x1024"),
        (PORTRAIT, IMAGE_SIZE, "1024x1536"),
        (SQUARE, Size(1536, 1024), "1024x1024"),
        (Aspect(4, 3), IMAGE_SIZE, "1536x1024"),
        (None, Size(1280, 720), "1536x1024"),
    ],
)
async def test_gpt_image_sizes(
    providers: FakeProviders, aspect: Aspect | None, image_size: Size, size: str
) -> None:
    """GPT image models get the one of their three sizes nearest the wanted aspect, and the
    quality, format and compression that save bytes and time."""
    body = await openai_draw(providers, "gpt-image-2", wanted_size(image_size, aspect))
    assert body == {"model": "gpt-image-2", "prompt": PROMPT, "size": size, "n": 1, **GPT_OPTIONS}


async def test_png_is_asked_without_a_compression(providers: FakeProviders) -> None:
    """OPENAI_OUTPUT_FORMAT=png sends no output_compression (GPT image models refuse it)."""
    body = await openai_draw(
        providers, "gpt-image-2", IMAGE_SIZE, output_format="png", quality="high"
    )
    assert body["output_format"] == "png" and body["quality"] == "high"
    assert "output_compression" not in body


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [("dall-e-2", LANDSCAPE, "1024x1024"), ("flux-dev", LANDSCAPE, "1360x768")],
)
async def test_other_openai_compatible_models(
    providers: FakeProviders, model: str, aspect: Aspect, size: str
) -> None:
    """dall-e-2 (on servers that still serve it) gets a square and none of the GPT image options;
    another compatible model gets IMAGE_SIZE's area in the asked shape, and nothing more."""
    body = await openai_draw(providers, model, wanted_size(IMAGE_SIZE, aspect))
    assert body == {"model": model, "prompt": PROMPT, "size": size, "n": 1}


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        (
            SYNC,
            {"model": "qwen-image-plus", "parameters": {"size": "1024*1024"}},
            "InvalidParameter",
            "The size 1024*1024 is not supported",
        ),
        (
            SYNC,
            {"model": "wan2.6-t2i", "parameters": {"size": "1024*1024"}},
            "InvalidParameter",
            "The size 1024*1024 is not supported",
        ),
        (SYNC, {"model": "qwen-image-max", "parameters": {"n": 2}}, "InvalidParameter", "n must"),
        (TASK, {"model": "wan2.2-t2i-flash", "parameters": {"size": "2048*2048"}}, "Inv", "size"),
        (TASK, {"model": "wan2.6-t2i", "parameters": {}}, "InvalidParameter", "Model not exist."),
        (
            TASK,
            {"model": "wan2.2-t2i-flash", "parameters": {"negative_prompt": "x"}},
            "InvalidParameter",
            "parameters.negative_prompt is not a parameter",
        ),
        (
            "/v1/images/generations",
            {"model": "gpt-image-2", "size": "1000x1000"},
            "invalid_value",
            "Invalid value: '1000x1000'",
        ),
        (
            "/v1/images/generations",
            {"model": "dall-e-2", "output_format": "jpeg"},
            "invalid_value",
            "Unknown parameter: 'output_format'.",
        ),
        (
            "/v1/images/generations",
            {"model": "gpt-image-2", "output_format": "png", "output_compression": 80},
            "invalid_value",
            "only supported for jpeg and webp",
        ),
    ],
    ids=[
        "qwen-fixed",
        "wan-area",
        "qwen-n",
        "wan-sides",
        "wan2.6-on-task-api",
        "task-negative-in-parameters",
        "gpt-size",
        "dall-e-2-option",
        "png-compression",
    ],
)
async def test_stand_ins_refuse_what_the_documentation_refuses(
    providers: FakeProviders,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    status: str,
    words: str,
) -> None:
    """A size, n or option a model does not take is answered 400 in the provider's own shape:
    DashScope's code and message, OpenAI's error object naming the parameter."""
    if path.startswith("/v1"):
        sent: dict[str, Any] = {"prompt": "x", **body}
    elif path == SYNC:
        messages = [{"role": "user", "content": [{"text": "x"}]}]
        sent = {**body, "input": {"messages": messages}}
    else:
        sent = {**body, "input": {"prompt": "x"}}
    headers = {"Authorization": f"Bearer {VALID_KEY}", "X-DashScope-Async": "enable"}
    async with http.post(providers.url + path, json=sent, headers=headers) as answer:
        assert answer.status == 400
        document = await answer.json()
    if path.startswith("/v1"):
        error = document["error"]
        assert error["code"] == status and words in error["message"]
        assert error["type"] == "invalid_request_error" and error["param"]
    else:
        assert document["code"].startswith(status) and words in document["message"]
        assert document["request_id"]


@pytest.mark.parametrize(
    ("default", "aspect", "wanted"),
    [
        (Size(1024, 1024), None, Size(1024, 1024)),
        (Size(1000, 700), None, Size(1000, 700)),
        (Size(1024, 1024), LANDSCAPE, Size(1360, 768)),
        (Size(1024, 1024), PORTRAIT, Size(768, 1360)),
        (Size(1536, 1024), SQUARE, Size(1248, 1248)),
        (Size(64, 64), Aspect(21, 9), Size(96, 64)),
    ],
)
def test_wanted_size_keeps_image_size_area(
    default: Size, aspect: Aspect | None, wanted: Size
) -> None:
    """The wanted size is IMAGE_SIZE, or about its area in the asked shape (multiples of 16)."""
    assert wanted_size(default, aspect) == wanted


def test_a_range_rule_finds_the_nearest_size_it_takes() -> None:
    """A size outside a range becomes the nearest the range takes; inside, it stays."""
    rule = SizeRule(sides=(1, 4096), area=(1280 * 1280, 1440 * 1440), max_ratio=4.0)
    assert rule.fit(Size(1300, 1300)) == Size(1300, 1300)
    fitted = rule.fit(Size(1360, 768))
    assert rule.takes(fitted) and abs(fitted.width / fitted.height - 1360 / 768) < 0.02
    assert rule.fit(Size(4096, 256)) == Size(2560, 640)  # the widest it takes: 4:1


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"dashscope_negative_prompt": "模糊" * 251}, "DASHSCOPE_NEGATIVE_PROMPT"),
        ({"openai_output_compression": "101"}, "OPENAI_OUTPUT_COMPRESSION"),
        ({"openai_output_format": "gif"}, "OPENAI_OUTPUT_FORMAT"),
        ({"openai_image_quality": "hd"}, "OPENAI_IMAGE_QUALITY"),
        ({"dashscope_watermark": "maybe"}, "DASHSCOPE_WATERMARK"),
    ],
)
def test_provider_options_are_checked_at_start(overrides: dict[str, str], key: str) -> None:
    """A provider option outside what the provider takes stops imgbot at start, naming the key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(s3_access_key="a", s3_secret_key="b", **overrides)
    assert caught.value.key == key


def test_defaults_name_current_models() -> None:
    """Without model settings imgbot draws with gpt-image-2 and wan2.6-t2i."""
    keys = {"s3_access_key": "a", "s3_secret_key": "b", "openai_api_key": "k"}
    openai = build_generator(load_settings(**keys, image_generator="openai"))
    dashscope = build_generator(
        load_settings(**keys, image_generator="dashscope", dashscope_api_key="k")
    )
    assert (openai.model, dashscope.model) == ("gpt-image-2", "wan2.6-t2i")
