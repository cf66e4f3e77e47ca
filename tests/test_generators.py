"""The DashScope and OpenAI generators against local fakes, and ``imgbot draw`` through them."""

from __future__ import annotations

import io
import json
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from PIL import Image
from pydantic import SecretStr

from imgbot.config.settings import load_settings
from imgbot.errors import ConfigError, GeneratorError
from imgbot.generators import Generator, build_generator
from imgbot.generators.dashscope import DashScopeGenerator
from imgbot.generators.http import HttpLimits, origin_of
from imgbot.generators.openai_images import OpenAIImagesGenerator
from imgbot.models import GeneratedImage, Size
from tests.conftest import CliRunner, set_up_bucket
from tests.fake_providers import RESULT_QUERY, VALID_KEY, FakeProviders, FakeProvidersThread
from tests.images import decompression_bomb, photo_png

Provider = Literal["dashscope", "openai"]
PROVIDERS: list[Provider] = ["dashscope", "openai"]
PROMPT = "一只可爱的小猫"
DASHSCOPE_MODEL, OPENAI_MODEL = "wanx2.1-t2i-turbo", "gpt-image-2"
WRONG_KEY = "sk-wrong-key-abcdef123456"


def make_generator(
    provider: Provider, providers: FakeProviders, key: str = VALID_KEY, **limits: Any
) -> Generator:
    bounds = HttpLimits(
        call_timeout=5, total_timeout=15, **{"max_bytes": 20 * 2**20, "attempts": 4, **limits}
    )
    common: dict[str, Any] = {
        "api_key": SecretStr(key),
        "limits": bounds,
        "base_url": providers.url,
    }
    if provider == "dashscope":
        return DashScopeGenerator(model=DASHSCOPE_MODEL, poll_interval=0.01, **common)
    return OpenAIImagesGenerator(
        **{**common, "base_url": f"{providers.url}/v1"}, model=OPENAI_MODEL
    )


async def draw(provider: Provider, providers: FakeProviders, **options: Any) -> GeneratedImage:
    generator = make_generator(provider, providers, **options)
    try:
        return await generator.generate(PROMPT, Size(1024, 1024))
    finally:
        await generator.aclose()


async def failure(provider: Provider, providers: FakeProviders, **options: Any) -> GeneratorError:
    with pytest.raises(GeneratorError) as caught:
        await draw(provider, providers, **options)
    error = caught.value
    assert "\n" not in str(error) and str(error).startswith(provider)
    return error


# Unit level: the generator classes against the fakes ------------------------------------------


async def test_dashscope_request_and_polling(providers: FakeProviders) -> None:
    """The task is submitted with key, async header and prompt, polled, then downloaded keyless."""
    image = await draw("dashscope", providers)
    assert image == GeneratedImage(data=providers.script.image)
    [submit] = providers.api_requests("POST")
    assert submit.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert submit.headers["X-DashScope-Async"] == "enable"
    assert submit.headers["Content-Type"].startswith("application/json")
    expected = {"model": DASHSCOPE_MODEL, "input": {"prompt": PROMPT}}
    parameters = {"size": "1024*1024", "n": 1, "prompt_extend": True, "watermark": False}
    assert submit.body == {**expected, "parameters": parameters}
    polls = providers.api_requests("GET")
    assert len(polls) >= 2
    assert all(p.headers["Authorization"] == f"Bearer {VALID_KEY}" for p in polls)
    assert [d.headers.get("Authorization") for d in providers.downloads()] == [None]


@pytest.mark.parametrize("answer", ["b64", "url"])
async def test_openai_request_and_answers(
    providers: FakeProviders, answer: Literal["b64", "url"]
) -> None:
    """OpenAI gets model, prompt, WxH size, n and the GPT image options (a JPEG at compression
    90, medium quality); base64 and URL answers both give bytes."""
    providers.script.openai_answer = answer
    image = await draw("openai", providers)
    assert image == GeneratedImage(data=providers.script.image)
    [request] = providers.api_requests("POST")
    assert request.path == "/v1/images/generations"
    assert request.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert request.body == {
        "model": OPENAI_MODEL,
        "prompt": PROMPT,
        "size": "1024x1024",
        "n": 1,
        "quality": "medium",
        "output_format": "jpeg",
        "output_compression": 90,
    }
    downloads = providers.downloads()
    assert len(downloads) == (1 if answer == "url" else 0)
    assert all("Authorization" not in d.headers for d in downloads)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_throttled_once_then_succeeds(
    providers: FakeProviders, provider: Provider, no_retry_waits: list[float]
) -> None:
    """A 429 is retried after its Retry-After, and the second attempt's picture is returned."""
    providers.script.throttle, providers.script.retry_after = 1, "3"
    image = await draw(provider, providers)
    assert image.data == providers.script.image
    assert len(providers.api_requests("POST")) == 2
    assert no_retry_waits == [3.0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_throttled_on_the_last_attempt_fails_at_once(
    providers: FakeProviders, provider: Provider, no_retry_waits: list[float]
) -> None:
    """A 429 on the final attempt is not waited for: the error comes without another sleep."""
    providers.script.throttle, providers.script.retry_after = 100, "9"
    error = await failure(provider, providers, attempts=2)
    assert "HTTP 429" in str(error)
    assert len(providers.api_requests()) == 2
    assert no_retry_waits == [9.0]  # between attempts 1 and 2, none after the last


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_server_errors_capped_attempts(providers: FakeProviders, provider: Provider) -> None:
    """A provider answering 503 forever is tried `attempts` times, then one error."""
    providers.script.throttle, providers.script.throttle_status = 100, 503
    error = await failure(provider, providers, attempts=2)
    assert "HTTP 503" in str(error) and error.reason == "The service is unavailable."
    assert len(providers.api_requests()) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_failure_is_one_error(providers: FakeProviders, provider: Provider) -> None:
    """A FAILED task (DashScope) or a 400 (OpenAI) becomes one GeneratorError, never retried."""
    providers.script.outcome = "fail"
    error = await failure(provider, providers)
    assert error.reason == "Algorithm process error: mocked failure."
    assert "InternalError.Algo" in str(error) and error.reason in str(error)
    assert not error.moderated
    assert len(providers.api_requests("POST")) == 1


@pytest.mark.parametrize(
    ("provider", "outcome", "code"),
    [
        ("dashscope", "moderated", "DataInspectionFailed"),
        ("dashscope", "fail", "IPInfringementSuspect"),
        ("openai", "moderated", "moderation_blocked"),
        ("openai", "fail", "data_inspection_failed"),
    ],
)
async def test_moderated(
    providers: FakeProviders, provider: Provider, outcome: Any, code: str
) -> None:
    """Moderation refusals, at submit or in the task, set moderated=True."""
    providers.script.outcome = outcome
    providers.script.failure = (code, "Input data is suspected of IP infringement.")
    error = await failure(provider, providers)
    assert error.moderated and error.reason and code in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_wrong_key_one_request(providers: FakeProviders, provider: Provider) -> None:
    """A 401 stops at once: one request, a message naming the key problem, no key in it."""
    error = await failure(provider, providers, key=WRONG_KEY)
    assert f"{provider} rejected the API key (HTTP 401)" in str(error)
    assert WRONG_KEY not in str(error) and WRONG_KEY not in error.reason
    assert len(providers.requests) == 1


@pytest.mark.parametrize(
    ("provider", "url", "words"),
    [
        ("dashscope", "file:///etc/passwd", "not http(s)"),
        ("openai", "ftp://127.0.0.1/result.png", "not http(s)"),
        ("dashscope", "{providers}/results/redirect.png?{query}", "redirected the result to a URL"),
        (
            "openai",
            "{providers}/results/gone/x.png?{query}",
            "/results/gone/x.png failed (HTTP 404)",
        ),
    ],
    ids=["file", "ftp", "redirect-to-file", "not-found"],
)
async def test_bad_result_url(
    providers: FakeProviders, provider: Provider, url: str, words: str
) -> None:
    """Non-http(s) URLs, redirects to file:// and 404s fail at once, without the signed query."""
    providers.script.openai_answer = "url"
    providers.script.result_url = url.format(providers=providers.url, query=RESULT_QUERY)
    error = await failure(provider, providers)
    assert words in str(error) and "Signature" not in str(error)
    assert "OSSAccessKeyId" not in str(error) and "Expires" not in str(error)
    assert len(providers.downloads()) == (1 if url.startswith("{providers}") else 0)


@pytest.mark.parametrize(
    ("provider", "chunked", "size"),
    [("dashscope", False, 128), ("dashscope", True, 128), ("openai", False, 128),
     ("openai", False, 256)],
    ids=["content-length", "chunked", "base64", "base64-json-cap"],
)  # fmt: skip
async def test_oversized(
    providers: FakeProviders, provider: Provider, chunked: bool, size: int
) -> None:
    """A result over max_bytes is refused, declared or streamed; no signed query in the error."""
    providers.script.image, providers.script.chunked = photo_png(size), chunked
    error = await failure(provider, providers, max_bytes=16 * 1024)
    assert "limit of 16384 bytes" in str(error)
    assert "Signature" not in str(error)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"image_generator": "dashscope"}, "DASHSCOPE_API_KEY"),
        ({"image_generator": "openai", "openai_image_model": "m"}, "OPENAI_API_KEY"),
        ({"image_generator": "openai", "openai_api_key": "k"}, None),
        ({"image_generator": "dashscope", "dashscope_api_key": "k"}, None),
        ({"image_generator": "openai", "openai_api_key": "k", "openai_image_model": "m"}, None),
    ],
)  # fmt: skip
def test_factory(overrides: dict[str, str], key: str | None) -> None:
    """build_generator returns the named generator (OPENAI_IMAGE_MODEL has a default), or a
    ConfigError naming what is missing."""
    settings = load_settings(s3_access_key="a", s3_secret_key="b", **overrides)
    if key is None:
        generator = build_generator(settings)
        assert isinstance(generator, DashScopeGenerator | OpenAIImagesGenerator)
        assert generator.name == settings.image_generator
        return
    with pytest.raises(ConfigError) as caught:
        build_generator(settings)
    assert caught.value.key == key


# CLI level: `imgbot draw` in a subprocess, a real MinIO, the fakes on a thread -----------------


@dataclass
class Cli:
    """What a CLI test needs: the threaded providers, the environment and the bucket to inspect."""

    providers: FakeProviders
    monkeypatch: pytest.MonkeyPatch
    imgbot: CliRunner
    """Runs ``imgbot ARGS`` (in this process: the providers answer from their own thread)."""

    def use(self, provider: Provider, **env: str) -> None:
        """Point imgbot at the providers as ``provider`` (plus ``env``) and run setup."""
        for key, value in {**self.providers.env_for(provider, OPENAI_MODEL), **env}.items():
            self.monkeypatch.setenv(key, value)
        set_up_bucket()


@pytest.fixture
def cli(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    providers_thread: FakeProvidersThread,
    cli_here: CliRunner,
) -> Cli:
    """A MinIO-backed environment and the providers on a thread, serving while ``imgbot`` runs."""
    providers_thread.fake.script.running_polls = 0
    return Cli(providers_thread.fake, monkeypatch, cli_here)


@pytest.mark.minio
@pytest.mark.parametrize(
    ("provider", "answer"), [("dashscope", "url"), ("openai", "b64"), ("openai", "url")]
)
def test_cli_draw_stores_the_providers_pixels(
    cli: Cli, provider: Provider, answer: Literal["b64", "url"]
) -> None:
    """draw --json exits 0; the stored original has exactly the provider's pixels."""
    cli.use(provider)
    cli.providers.script.openai_answer = answer
    done = cli.imgbot("draw", PROMPT, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"] == PROMPT and result["generator"] == provider
    with urllib.request.urlopen(result["original_url"], timeout=10) as got:
        stored = got.read()
    expected = Image.open(io.BytesIO(cli.providers.script.image))
    assert Image.open(io.BytesIO(stored)).tobytes() == expected.tobytes()


@pytest.mark.minio
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"outcome": "fail"}, "Algorithm process error: mocked failure."),
        ({"outcome": "hang"}, "within 2 s"),
        ({"image": decompression_bomb()}, ""),
        ({"image": b"<html>not an image</html>"}, ""),
    ],
    ids=["failed-task", "never-answers", "bomb", "not-image"],
)
def test_cli_failure_is_one_line_and_stores_nothing(
    cli: Cli, admin_s3: Any, bucket: str, change: dict[str, Any], words: str
) -> None:
    """FAILED task, silent provider (cut at GENERATOR_TIMEOUT_SECONDS), bomb or non-image: exit 1,
    one line, no object."""
    cli.use("dashscope", GENERATOR_TIMEOUT_SECONDS="2")
    for name, value in change.items():
        setattr(cli.providers.script, name, value)
    done = cli.imgbot("draw", PROMPT, "--json")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert words in done.stderr
    assert admin_s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("provider", ["dashscope", "openai"])
async def test_result_url_on_internal_host_refused(
    providers: FakeProviders, provider: Provider
) -> None:
    """A result URL on another host that resolves to loopback (internal services) is refused."""
    providers.script.openai_answer = "url"
    port = providers.url.rsplit(":", 1)[1]
    providers.script.result_url = f"http://localhost:{port}/results/x.png?{RESULT_QUERY}"
    error = await failure(provider, providers)
    assert "internal address (localhost)" in str(error)
    assert providers.downloads() == []


@pytest.mark.parametrize("provider", ["dashscope", "openai"])
async def test_result_on_another_port_of_the_providers_host_refused(
    providers: FakeProviders, provider: Provider
) -> None:
    """Only the provider's exact scheme, host and port are trusted: another port of its
    (loopback) host is an internal service like any other, and is never fetched."""
    other = FakeProviders()
    await other.start()
    try:
        providers.script.openai_answer = "url"
        providers.script.result_url = f"{other.url}/results/x.png?{RESULT_QUERY}"
        error = await failure(provider, providers)
        assert "internal address (127.0.0.1)" in str(error)
        assert other.requests == [] and providers.downloads() == []
    finally:
        await other.stop()


@pytest.mark.parametrize("provider", ["dashscope", "openai"])
async def test_result_on_the_providers_origin_is_fetched(
    providers: FakeProviders, provider: Provider
) -> None:
    """A result on the provider's own origin (loopback here) is trusted; host case is no matter."""
    providers.script.openai_answer = "url"
    host, port = providers.url.removeprefix("http://").split(":")
    providers.script.result_url = f"http://{host.upper()}:{port}/results/x.png?{RESULT_QUERY}"
    image = await draw(provider, providers)
    assert image.data == providers.script.image and len(providers.downloads()) == 1


def test_origins_compare_scheme_host_and_port() -> None:
    """Default ports are filled in; another scheme or port is another origin."""
    assert origin_of("https://Dash.example.com/a") == origin_of("https://dash.example.com:443/b")
    assert origin_of("http://h:8000/") != origin_of("http://h:9000/")
    assert origin_of("http://h/") != origin_of("https://h:80/")
    assert origin_of("http://h:abc/") is None and origin_of("ftp://h/") is None


async def test_retries_reach_the_metrics(providers: FakeProviders) -> None:
    """A retried provider call is counted in imgbot_retries_total{what="dashscope"}."""
    from prometheus_client import generate_latest

    from imgbot.service.metrics import Metrics

    metrics = Metrics()
    providers.script.throttle = 1
    generator = DashScopeGenerator(
        api_key=SecretStr(VALID_KEY),
        base_url=providers.url,
        model=DASHSCOPE_MODEL,
        limits=HttpLimits(call_timeout=5, total_timeout=15, max_bytes=2**20, attempts=4),
        poll_interval=0.01,
        observer=metrics,
    )
    try:
        await generator.generate(PROMPT, Size(1024, 1024))
    finally:
        await generator.aclose()
    assert (
        'imgbot_retries_total{what="dashscope"} 1.0' in generate_latest(metrics.registry).decode()
    )
