"""`imgbot doctor`'s state store check, run as a user runs it, against real SQLite and Redis."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from imgbot.state.sqlite_store import SQLiteStore
from tests.conftest import CliRunner, run_cli
from tests.minio_server import free_port
from tests.redis_server import answer_as_redis_6


@pytest.fixture(autouse=True)
def no_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage points at a closed port: its checks fail fast, the store check is what we read."""
    for key, value in {
        "S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "S3_ACCESS_KEY": "a",
        "S3_SECRET_KEY": "b",
        "S3_TIMEOUT_SECONDS": "1",
        "S3_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(key, value)


def store_check(imgbot: CliRunner) -> dict[str, Any]:
    """Run `imgbot doctor --json` with ``imgbot`` and return its state store check."""
    done = imgbot("doctor", "--json")
    assert "Traceback" not in done.stderr, done.stderr
    document = json.loads(done.stdout)
    [check] = [c for c in document["checks"] if c["name"] == "state store"]
    assert set(check) == {"name", "ok", "detail", "fix"}
    return dict(check)


def test_default_sqlite_store_is_fine(tmp_path: Path, cli_here: CliRunner) -> None:
    """Without STATE_URL doctor opens .data/state.db, proves it takes writes and says so."""
    check = store_check(cli_here)
    assert check["ok"] is True
    assert "STATE_URL unset" in check["detail"] and "SQLite 3." in check["detail"]
    assert str(tmp_path / ".data" / "state.db") in check["detail"]


def test_sqlite_held_by_the_running_bot_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite file locked by the bot is reported as in use by it, with its pid, not a failure."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("STATE_URL", f"sqlite:///{path}")
    bot = SQLiteStore(path)
    try:
        check = store_check(run_cli)  # another process: this one holds the lock
    finally:
        asyncio.run(bot.aclose())
    assert check["ok"] is True, check
    assert f"in use by the running bot, pid {os.getpid()}" in check["detail"]


def test_sqlite_unwritable_folder_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A SQLite path whose folder cannot be made is a PROBLEM naming STATE_URL, with a fix."""
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("STATE_URL", f"sqlite:///{tmp_path}/file/state.db")
    check = store_check(cli_here)
    assert check["ok"] is False
    assert check["detail"].startswith("STATE_URL=sqlite:///") and check["fix"]


def test_redis_reachable(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A reachable Redis 7 is ok, named without a password, with its version."""
    monkeypatch.setenv("STATE_URL", redis_url)
    check = store_check(cli_here)
    assert check["ok"] is True, check
    assert check["detail"].startswith(f"STATE_URL={redis_url}: Redis 7.")


def test_redis_down_is_a_problem_without_the_password(
    monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """Redis not answering is a PROBLEM naming STATE_URL without its password, text and JSON."""
    port = free_port()
    monkeypatch.setenv("STATE_URL", f"redis://:hunter2-state@127.0.0.1:{port}/0")
    check = store_check(cli_here)
    assert check["ok"] is False
    assert check["detail"].startswith(f"STATE_URL=redis://127.0.0.1:{port}/0: ")
    assert "Redis 7" in check["fix"]
    done = cli_here("doctor")
    assert done.returncode == 1
    [line] = [line for line in done.stdout.splitlines() if "state store" in line]
    assert line.startswith("PROBLEM") and f"redis://127.0.0.1:{port}/0" in line
    assert "hunter2-state" not in done.stdout + done.stderr + json.dumps(check)


async def test_redis_6_is_a_problem(monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner) -> None:
    """A server saying it is Redis 6 is a PROBLEM: imgbot needs Redis 7 or later."""
    server = await asyncio.start_server(answer_as_redis_6, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("STATE_URL", f"redis://127.0.0.1:{port}/0")
    try:
        check = await asyncio.to_thread(store_check, cli_here)
    finally:
        server.close()
        await server.wait_closed()
    assert check["ok"] is False
    assert "Redis 6.2.14 is too old" in check["detail"]
