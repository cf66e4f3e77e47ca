"""`imgbot doctor`'s state store check, run as a user runs it, against real SQLite and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from imgbot.config.settings import load_settings
from imgbot.doctor.state_store import store
from imgbot.state.sqlite_store import SQLiteStore
from tests.conftest import CliRunner, run_cli
from tests.processes import free_port
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
    assert "the bot makes it at start" in check["detail"]
    assert not (tmp_path / ".data").exists()  # doctor makes nothing


def test_sqlite_held_by_the_running_bot_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite file locked by the bot is reported as in use by it, with its pid, not a failure."""
    path = tmp_path / "state.db"
    monkeypatch.setenv("STATE_URL", f"sqlite:///{path}")
    bot = SQLiteStore(path, app="imgbot:test:")
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


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` and, for files, their bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize(
    ("what", "ok", "said"),
    [
        ("a text file", False, "not a SQLite database"),
        ("a folder", False, "not a file"),
        ("a missing path", True, "not made yet; the bot makes it at start"),
        ("an empty file", True, "empty; the bot sets it up at start"),
        ("another program's database", False, "not imgbot's"),
    ],
)
def test_doctor_makes_no_file_or_folder(tmp_path: Path, what: str, ok: bool, said: str) -> None:
    """Whatever STATE_URL names (a file like /etc/passwd, a folder, a path not there, an empty
    file, another database), doctor reports it and the tree is left exactly as it was."""
    tree = tmp_path / "tree"
    tree.mkdir()
    target = {"a missing path": tree / "not" / "there" / "state.db"}.get(what, tree / "target")
    if what == "a text file":
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    elif what == "a folder":
        target.mkdir()
    elif what == "an empty file":
        target.touch()
    elif what == "another program's database":
        with contextlib.closing(sqlite3.connect(target)) as db:
            db.execute("CREATE TABLE users (name TEXT)")
    before = _tree(tree)
    check = store(
        load_settings(s3_access_key="a", s3_secret_key="b", state_url=f"sqlite:///{target}")
    )
    assert (check.ok, said in check.detail) == (ok, True), check
    assert _tree(tree) == before


@pytest.mark.parametrize("lock_left", [True, False])
async def test_doctor_probes_imgbots_own_file_only(tmp_path: Path, lock_left: bool) -> None:
    """On imgbot's own file (no bot running) doctor writes its probe row and makes nothing
    beside it, not even the lock when there is none."""
    path = tmp_path / "state.db"
    bot = SQLiteStore(path, app="imgbot:test:")
    await bot.aclose()
    if not lock_left:
        (tmp_path / "state.db.lock").unlink()
    before = set(_tree(tmp_path))
    settings = load_settings(s3_access_key="a", s3_secret_key="b", state_url=f"sqlite:///{path}")
    check = await asyncio.to_thread(store, settings)
    assert check.ok and check.detail.endswith("takes writes"), check
    assert set(_tree(tmp_path)) == before
