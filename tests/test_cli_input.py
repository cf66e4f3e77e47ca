"""Hostile command-line input: keys outside the prefix, short TTLs, endless files, odd prompts."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from imgbot.chat.prompts import clean_prompt
from imgbot.config.settings import MIN_PRESIGN_TTL
from tests.conftest import CliRunner, run_cli, set_up_bucket
from tests.fake_providers import FakeProviders, FakeProvidersThread

# argv cannot hold NUL; the bell, ESC, bidi and zero-width characters stand for the rest.
HOSTILE_PROMPT = "画\u202e一只\u200b猫\x07\x1b[31m \u2066🐱\u2069"
CLEANED = "画一只猫[31m 🐱"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough configuration for offline commands."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")


def _one_line(done_stderr: str) -> str:
    assert "Traceback" not in done_stderr
    lines = done_stderr.strip().splitlines()
    assert len(lines) == 1, done_stderr
    return lines[0]


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize(
    "key",
    [
        "outside/secret.txt",
        "imagegenx/a.png",
        "imagegen/../outside/secret.txt",
        "imagegen/2026/../../x.png",
        "imagegen/./x.png",
        "imagegen/..",
        "imagegen/",
        "",
    ],
)
def test_url_refuses_keys_outside_the_prefix(key: str, cli_here: CliRunner) -> None:
    """`imgbot url` signs only keys under S3_PREFIX without '.'/'..' segments: else exit 2."""
    done = cli_here("url", key)
    assert done.returncode == 2 and done.stdout == ""
    line = _one_line(done.stderr)
    assert line.startswith("imgbot: usage error: KEY: ")


@pytest.mark.usefixtures("keys")
def test_url_ttl_minimum_is_the_settings_minimum(
    monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """--ttl below the minimum PRESIGN_TTL_SECONDS takes is refused the same way; at it, works."""
    done = cli_here("url", "imagegen/x.png", "--ttl", str(MIN_PRESIGN_TTL - 1))
    assert done.returncode == 2
    assert f"--ttl: must be at least {MIN_PRESIGN_TTL} seconds" in _one_line(done.stderr)
    done = cli_here("url", "imagegen/x.png", "--ttl", str(MIN_PRESIGN_TTL))
    assert done.returncode == 0, done.stderr
    assert parse_qs(urlsplit(done.stdout.strip()).query)["X-Amz-Expires"] == [str(MIN_PRESIGN_TTL)]
    monkeypatch.setenv("PRESIGN_TTL_SECONDS", str(MIN_PRESIGN_TTL - 1))
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 2 and "PRESIGN_TTL_SECONDS" in _one_line(done.stderr)


@pytest.mark.usefixtures("keys")
def test_publish_dev_zero_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose size the system does not know (/dev/zero) is read only to MAX_IMAGE_BYTES+1."""
    monkeypatch.setenv("MAX_IMAGE_BYTES", "4096")
    done = run_cli("publish", "/dev/zero", timeout=30)
    assert done.returncode == 1
    assert _one_line(done.stderr) == "imgbot: /dev/zero is larger than MAX_IMAGE_BYTES=4096"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe fed with 64 KiB by a thread until the reader goes away."""
    path = tmp_path / "pipe.png"
    os.mkfifo(path)

    def feed() -> None:
        try:
            with path.open("wb") as pipe:
                pipe.write(b"\x89PNG" + b"\0" * 65536)
        except BrokenPipeError:
            pass  # the reader stopped at its limit, as it should

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    yield path
    writer.join(10)
    assert not writer.is_alive()


@pytest.mark.usefixtures("keys")
def test_publish_fifo_over_the_limit_refused(fifo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe streaming more than MAX_IMAGE_BYTES is refused with one line, exit 1."""
    monkeypatch.setenv("MAX_IMAGE_BYTES", "4096")
    done = run_cli("publish", str(fifo), timeout=30)
    assert done.returncode == 1
    assert _one_line(done.stderr) == f"imgbot: {fifo} is larger than MAX_IMAGE_BYTES=4096"


def test_clean_prompt_drops_controls_and_folds_spaces() -> None:
    """Control, zero-width and bidi characters go; whitespace runs become one space."""
    assert clean_prompt(HOSTILE_PROMPT) == CLEANED
    assert clean_prompt(" 一只\n\t小猫 ") == "一只 小猫"
    assert clean_prompt("画\x00一只\x00猫") == "画一只猫"
    assert clean_prompt("\u200b\u200d\ufeff\x00") == ""


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize("prompt", ["\u200b\u202e\x07", " \n\t "])
def test_draw_refuses_a_prompt_that_cleans_to_nothing(prompt: str, cli_here: CliRunner) -> None:
    """A prompt of only invisible characters is a usage error, like an empty one."""
    done = cli_here("draw", prompt)
    assert done.returncode == 2
    assert _one_line(done.stderr) == "imgbot: usage error: PROMPT: is empty"


@pytest.mark.usefixtures("keys")
def test_draw_refuses_a_blocked_word(
    cli_here: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """draw applies BLOCKED_WORDS_FILE as the bot does: a usage error in one line, before any
    provider call (none is configured to answer), the words not repeated."""
    listed = tmp_path / "blocked.txt"
    listed.write_text("坏词\n", encoding="utf-8")
    monkeypatch.setenv("BLOCKED_WORDS_FILE", str(listed))
    monkeypatch.setenv("IMAGE_GENERATOR", "dashscope")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-not-called")
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9")
    done = cli_here("draw", "画一个坏，词")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert line == "imgbot: usage error: PROMPT: holds a word listed in BLOCKED_WORDS_FILE"


@pytest.fixture
def fake_dashscope(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    providers_thread: FakeProvidersThread,
) -> FakeProviders:
    """The DashScope stand-in on a thread, configured as the generator, with the bucket set up."""
    fake = providers_thread.fake
    fake.script.running_polls = 0
    for key, value in fake.env_for("dashscope").items():
        monkeypatch.setenv(key, value)
    set_up_bucket()
    return fake


@pytest.mark.minio
def test_draw_cleans_the_prompt_for_generator_and_json(fake_dashscope: FakeProviders) -> None:
    """draw sends the cleaned prompt to the provider and reports the same in --json."""
    done = run_cli("draw", HOSTILE_PROMPT, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prompt"] == CLEANED
    [submit] = fake_dashscope.api_requests("POST")
    # DASHSCOPE_MODEL's default, wan2.6-t2i, takes the words as the one text of a user message.
    assert submit.body["input"]["messages"][0]["content"] == [{"text": CLEANED}]


def test_clean_prompt_drops_lone_surrogates() -> None:
    """Undecodable bytes (lone surrogates from argv or JSON) are dropped: they cannot be UTF-8."""
    from imgbot.chat.prompts import clean_prompt

    assert clean_prompt("画一只猫 \ud800 \udcff") == "画一只猫"
    clean_prompt("画一只猫 \ud800").encode("utf-8")
