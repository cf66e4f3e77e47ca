"""Editing through DashScope and OpenAI-compatible APIs, against stand-ins that follow their docs.

Each case is one edit model: the request shape it documents, the picture it receives (checked to
be the fitted picture, byte for byte) and how its failures become one GeneratorError.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

import pytest
from PIL import Image
from pydantic import SecretStr

from imgbot.config.settings import load_settings
from imgbot.errors import GeneratorError
from imgbot.generators import Generator, build_generator
from imgbot.generators.dashscope import QWEN_EDIT, WANX_EDIT, DashScopeGenerator
from imgbot.generators.http import HttpLimits
from imgbot.generators.openai_images import OpenAIImagesGenerator
from imgbot.models import GeneratedImage, Size
from tests.fake_providers import (
    DASHSCOPE_EDIT_SYNC,
    DASHSCOPE_EDIT_TASK,
    RESULT_QUERY,
    VALID_KEY,
    FakeProviders,
)
from tests.images import fitted, phone_jpeg

Case = Literal["qwen", "wanx", "gpt-image", "dall-e-2"]
CASES: list[Case] = ["qwen", "wanx", "gpt-image", "dall-e-2"]
MODELS = {
    "qwen": "qwen-image-edit",
    "wanx": "wanx2.1-imageedit",
    "gpt-image": "gpt-image-2",
    "dall-e-2": "dall-e-2",
}
INSTRUCTION = "把背景换成海边"
WRONG_KEY = "sk-wrong-key-abcdef123456"


def make_editor(case: Case, providers: FakeProviders, key: str = VALID_KEY) -> Generator:
    """The generator whose edit model is ``case``'s, pointed at the stand-ins."""
    limits = HttpLimits(call_timeout=5, total_timeout=15, max_bytes=20 * 2**20, attempts=2)
    common: dict[str, Any] = {"api_key": SecretStr(key), "limits": limits}
    if case in ("qwen", "wanx"):
        return DashScopeGenerator(
            base_url=providers.url,
            model="wan2.2-t2i-flash",
            edit_model=MODELS[case],
            poll_interval=0.01,
            **common,
        )
    return OpenAIImagesGenerator(
        base_url=f"{providers.url}/v1", model="gpt-image-2", edit_model=MODELS[case], **common
    )


async def edit(
    case: Case, providers: FakeProviders, **options: Any
) -> tuple[GeneratedImage, bytes]:
    """Fit the phone photo to ``case``'s model and edit it; return the result and what was sent."""
    generator = make_editor(case, providers, **options)
    assert generator.edits is not None
    picture = fitted(phone_jpeg(), generator.edits)
    size = Size(*Image.open(io.BytesIO(picture)).size)
    try:
        return await generator.edit(picture, INSTRUCTION, size), picture
    finally:
        await generator.aclose()


async def edit_failure(case: Case, providers: FakeProviders, **options: Any) -> GeneratorError:
    with pytest.raises(GeneratorError) as caught:
        await edit(case, providers, **options)
    error = caught.value
    assert "\n" not in str(error)
    return error


@pytest.mark.parametrize("case", CASES)
async def test_the_fitted_picture_is_what_the_provider_receives(
    providers: FakeProviders, case: Case
) -> None:
    """The provider decodes exactly the fitted picture (multipart or data: URI), takes it by its
    documented rules, and its result picture is returned."""
    providers.script.openai_answer = "url" if case == "dall-e-2" else "b64"
    result, fitted = await edit(case, providers)
    assert result.data == providers.script.image
    assert providers.pictures == [fitted]
    [request] = providers.api_requests("POST")
    assert request.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert all("Authorization" not in d.headers for d in providers.downloads())


async def test_qwen_request_shape(providers: FakeProviders) -> None:
    """qwen-image-edit: one synchronous call with one user message of an image and a text."""
    _, fitted = await edit("qwen", providers)
    [request] = providers.api_requests()
    assert request.path == DASHSCOPE_EDIT_SYNC and "X-DashScope-Async" not in request.headers
    assert request.body["model"] == "qwen-image-edit"
    [message] = request.body["input"]["messages"]
    assert message["role"] == "user"
    image, text = message["content"]
    assert image == {"image": "data:image/jpeg;base64," + base64.b64encode(fitted).decode()}
    assert text == {"text": INSTRUCTION}


async def test_wanx_request_shape(providers: FakeProviders) -> None:
    """wanx2.1-imageedit: a description_edit task with the picture as base_image_url, polled."""
    _, fitted = await edit("wanx", providers)
    [submit] = providers.api_requests("POST")
    assert submit.path == DASHSCOPE_EDIT_TASK and submit.headers["X-DashScope-Async"] == "enable"
    assert submit.body == {
        "model": "wanx2.1-imageedit",
        "input": {
            "function": "description_edit",
            "prompt": INSTRUCTION,
            "base_image_url": "data:image/jpeg;base64," + base64.b64encode(fitted).decode(),
        },
        "parameters": {"n": 1},
    }
    assert len(providers.api_requests("GET")) >= 2


GPT_OPTIONS = {"quality": b"medium", "output_format": b"jpeg", "output_compression": b"90"}


@pytest.mark.parametrize(
    ("case", "field", "size", "options"),
    [("gpt-image", "image[]", b"1536x1024", GPT_OPTIONS), ("dall-e-2", "image", b"1024x1024", {})],
)
async def test_openai_form_fields(
    providers: FakeProviders, case: Case, field: str, size: bytes, options: dict[str, bytes]
) -> None:
    """The multipart form carries the picture under the model's field name, prompt, model, n=1
    and the size the model takes (the landscape one for a landscape photo); a GPT image model is
    also asked for the quality, format and compression drawings get, dall-e-2 for none."""
    await edit(case, providers)
    [request] = providers.api_requests()
    assert request.path == "/v1/images/edits"
    assert set(request.form) == {field, "prompt", "model", "n", "size", *options}
    assert request.form["prompt"].decode() == INSTRUCTION
    assert request.form["model"].decode() == MODELS[case]
    assert request.form["n"] == b"1" and request.form["size"] == size
    assert {name: request.form[name] for name in options} == options


async def test_openai_compatible_model_gets_no_size(providers: FakeProviders) -> None:
    """A model the generator does not know is sent no size: it keeps the picture's own."""
    limits = HttpLimits(call_timeout=5, total_timeout=15, max_bytes=20 * 2**20, attempts=1)
    generator = OpenAIImagesGenerator(
        api_key=SecretStr(VALID_KEY),
        base_url=f"{providers.url}/v1",
        model="flux-kontext",
        limits=limits,
    )
    assert generator.edit_model == "flux-kontext" and generator.edits is not None
    await generator.edit(fitted(phone_jpeg(), generator.edits), "x", Size(2048, 1536))
    await generator.aclose()
    [request] = providers.api_requests()
    assert "size" not in request.form and "image" in request.form


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("qwen", "DataInspectionFailed"),
        ("wanx", "DataInspectionFailed"),
        ("gpt-image", "moderation_blocked"),
        ("dall-e-2", "moderation_blocked"),
    ],
)
async def test_moderation_is_a_moderated_error(
    providers: FakeProviders, case: Case, code: str
) -> None:
    """A provider's content refusal of an edit is one GeneratorError with moderated=True."""
    providers.script.outcome = "moderated"
    error = await edit_failure(case, providers)
    assert error.moderated and code in str(error)


@pytest.mark.parametrize("case", CASES)
async def test_failure_is_one_error(
    providers: FakeProviders, case: Case, no_retry_waits: list[float]
) -> None:
    """A failed edit (an error answer, or a FAILED task) is one GeneratorError, not moderated."""
    providers.script.outcome = "fail"
    error = await edit_failure(case, providers)
    assert error.reason == "Algorithm process error: mocked failure." and not error.moderated


@pytest.mark.parametrize("case", CASES)
async def test_wrong_key_is_named(providers: FakeProviders, case: Case) -> None:
    """A 401 on the edit call is one error naming the key problem, never the key."""
    error = await edit_failure(case, providers, key=WRONG_KEY)
    assert "rejected the API key (HTTP 401)" in str(error) and WRONG_KEY not in str(error)
    assert len(providers.requests) == 1


@pytest.mark.parametrize("case", ["qwen", "wanx", "dall-e-2"])
async def test_result_url_on_an_internal_host_is_refused(
    providers: FakeProviders, case: Case
) -> None:
    """An edit's result URL that resolves to loopback is refused like a drawn picture's, without
    its signed query in the message."""
    port = providers.url.rsplit(":", 1)[1]
    providers.script.openai_answer = "url"
    providers.script.result_url = f"http://localhost:{port}/results/x.png?{RESULT_QUERY}"
    error = await edit_failure(case, providers)
    assert "internal address (localhost)" in str(error) and "Signature" not in str(error)
    assert providers.downloads() == []


@pytest.mark.parametrize("case", ["qwen", "wanx"])
async def test_result_redirect_to_a_file_is_refused(providers: FakeProviders, case: Case) -> None:
    """An edit result that redirects to file:// is refused, as for drawn pictures."""
    providers.script.result_url = f"{providers.url}/results/redirect.png?{RESULT_QUERY}"
    error = await edit_failure(case, providers)
    assert "redirected the result to a URL" in str(error)


async def test_a_picture_outside_the_documented_rules_is_refused_by_the_stand_in(
    providers: FakeProviders,
) -> None:
    """The stand-ins do enforce the documented rules: an unfitted 4000x3000 photo is refused by
    qwen-image-edit (sides above 3072), so the fitting tests above prove something."""
    generator = make_editor("qwen", providers)
    with pytest.raises(GeneratorError, match="3072"):
        await generator.edit(phone_jpeg(), INSTRUCTION, Size(4000, 3000))
    await generator.aclose()


@pytest.mark.parametrize(
    ("overrides", "edit_model", "spec"),
    [
        ({"image_generator": "openai"}, "gpt-image-2", None),
        (
            {
                "image_generator": "openai",
                "openai_image_model": "x",
                "openai_edit_model": "dall-e-2",
            },
            "dall-e-2",
            "square",
        ),
        ({"image_generator": "dashscope"}, "qwen-image-edit", QWEN_EDIT),
        (
            {"image_generator": "dashscope", "dashscope_edit_model": "wanx2.1-imageedit"},
            "",
            WANX_EDIT,
        ),
    ],
    ids=["openai-default", "openai-dall-e-2", "dashscope-default", "dashscope-wanx"],
)
def test_settings_choose_the_edit_model(
    overrides: dict[str, str], edit_model: str, spec: object
) -> None:
    """OPENAI_EDIT_MODEL defaults to OPENAI_IMAGE_MODEL; DASHSCOPE_EDIT_MODEL to qwen-image-edit;
    the chosen model decides what the generator's edit API takes."""
    keys = {
        "s3_access_key": "a",
        "s3_secret_key": "b",
        "openai_api_key": "k",
        "dashscope_api_key": "k",
    }
    generator = build_generator(load_settings(**keys, **overrides))
    assert generator.edit_model == (edit_model or overrides.get("dashscope_edit_model"))
    if spec == "square":
        assert generator.edits is not None and generator.edits.square
    elif spec is not None:
        assert generator.edits == spec
