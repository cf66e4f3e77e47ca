"""`imgbot simulate` as a user runs it: the chat page in headless Chromium, and SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import run_cli, set_up_bucket
from tests.polling import poll_until
from tests.processes import free_port

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read the process's stdout until a line containing ``marker``; return that line."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if marker in line:
                return line
        if process.poll() is not None:
            break
    raise AssertionError(f"no line with {marker!r}; exit code {process.poll()}")


@pytest.fixture
def simulate(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`imgbot simulate` running on a free port; yields the process and the chat page URL.

    Parametrized indirectly, its parameter is REPLY_STYLE, with "+media" for
    DINGTALK_MEDIA_UPLOAD=true.
    """
    style, _, media = str(getattr(request, "param", "markdown")).partition("+")
    monkeypatch.setenv("REPLY_STYLE", style)
    monkeypatch.setenv("DINGTALK_MEDIA_UPLOAD", "true" if media else "false")
    monkeypatch.setenv("SIMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("METRICS_PORT", "0")
    set_up_bucket()
    with (tmp_path / "simulate.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "imgbot", "simulate"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=dict(os.environ),
        )
    try:
        line = _read_until(process, "chat page:", timeout=30)
        url = line.split("chat page:", 1)[1].strip()
        _wait_connected(url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _wait_connected(url: str) -> None:
    """The page's send endpoint answers 409 until the bot's stream is connected."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
    poll_until(lambda: _bot_connected(url), what="the bot's connection to the simulator")


def _bot_connected(url: str) -> bool:
    request = urllib.request.Request(url.rstrip("/") + "/chat/status")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return bool(json.loads(answer.read()).get("connected"))
    except OSError:
        return False


def test_sigterm_during_generation_exits_0(simulate: tuple[subprocess.Popen[str], str]) -> None:
    """SIGTERM while a request is in flight: the process exits 0."""
    process, url = simulate
    body = json.dumps({"text": "帮我画一只可爱的小猫"}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/chat/send", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


@pytest.mark.browser
@pytest.mark.parametrize("simulate", ["markdown", "image+media"], indirect=True)
def test_chat_page_shows_image(simulate: tuple[subprocess.Popen[str], str]) -> None:
    """In headless Chromium, the requester's message gets a reply whose image really loads
    (a Markdown image, or DingTalk's own image message with REPLY_STYLE=image, shown by the media
    id `imgbot simulate` uploaded to the simulator's oapi with DINGTALK_MEDIA_UPLOAD=true)."""
    from playwright.sync_api import sync_playwright

    _, url = simulate
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.goto(url)
            page.fill("#input", "帮我画一只可爱的小猫")
            page.click("#send")
            page.wait_for_function(
                "() => [...document.querySelectorAll('img.reply-image')]"
                ".some(i => i.complete && i.naturalWidth > 0)",
                timeout=30_000,
            )
            width = page.eval_on_selector("img.reply-image", "i => i.naturalWidth")
            native = page.eval_on_selector_all("img.native-image", "l => l.map(i => i.src)")
            style = os.environ["REPLY_STYLE"]
            name = "chat-page.png" if style == "markdown" else f"chat-page-{style}.png"
            page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        finally:
            browser.close()
    assert width > 0
    if style == "markdown":
        assert native == []
    else:
        (src,) = native
        assert urlsplit(src).path.startswith("/chat/media/@")


def test_run_with_busy_metrics_port_exits_2(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A METRICS_PORT held by another program is a one-line configuration error, exit 2."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        monkeypatch.setenv("METRICS_PORT", str(holder.getsockname()[1]))
        monkeypatch.setenv("DINGTALK_CLIENT_ID", "id")
        monkeypatch.setenv("DINGTALK_CLIENT_SECRET", "secret")
        monkeypatch.setenv("DINGTALK_OPENAPI_ENDPOINT", f"http://127.0.0.1:{free_port()}")
        done = run_cli("run", timeout=30)
    assert done.returncode == 2
    assert "METRICS_PORT" in done.stderr and "Traceback" not in done.stderr
