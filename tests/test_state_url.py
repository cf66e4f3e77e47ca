"""STATE_URL: the forms it takes, where the default SQLite file lives, one line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbot.config.settings import load_settings
from imgbot.state import StateStore, open_store
from imgbot.state.redis_store import RedisStore
from imgbot.state.sqlite_store import SQLiteStore
from tests.conftest import CliRunner

KEYS = {"s3_access_key": "a", "s3_secret_key": "b"}


async def _opened(store: StateStore) -> str:
    """Where ``store`` keeps its data, after proving it takes writes; closes it."""
    try:
        return (await store.report()).location
    finally:
        await store.aclose()


async def test_default_is_data_folder_under_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without STATE_URL or systemd's STATE_DIRECTORY the store is .data/state.db (folder made)."""
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    store = open_store(load_settings(**KEYS), "imgbot:x:")
    assert isinstance(store, SQLiteStore)
    assert await _opened(store) == str(tmp_path / ".data" / "state.db")
    assert (tmp_path / ".data" / "state.db").is_file()


async def test_default_under_systemd_is_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under systemd (StateDirectory=imgbot sets STATE_DIRECTORY) the file lives there."""
    folder = tmp_path / "var-lib-imgbot"
    folder.mkdir()
    monkeypatch.setenv("STATE_DIRECTORY", str(folder))
    settings = load_settings(**KEYS)
    assert settings.state_location == f"sqlite:///{folder / 'state.db'}"
    assert await _opened(open_store(settings, "imgbot:x:")) == str(folder / "state.db")


async def test_sqlite_urls_absolute_and_relative(tmp_path: Path) -> None:
    """sqlite:////abs/path.db is an absolute path; sqlite:///rel.db is under the working folder."""
    absolute = tmp_path / "elsewhere" / "abs.db"
    store = open_store(load_settings(**KEYS, state_url=f"sqlite:///{absolute}"), "imgbot:x:")
    assert await _opened(store) == str(absolute)
    store = open_store(load_settings(**KEYS, state_url="sqlite:///sub/rel.db"), "imgbot:x:")
    assert await _opened(store) == str(tmp_path / "sub" / "rel.db")


async def test_redis_url_opens_a_redis_store(redis_url: str) -> None:
    """redis://host:port/db opens the Redis store, shown without a password."""
    store = open_store(load_settings(**KEYS, state_url=redis_url), "imgbot:x:")
    assert isinstance(store, RedisStore)
    assert await _opened(store) == redis_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "postgres://u:hunter2-secret@db/imgbot",
        "sqlite://host/state.db",
        "sqlite://",
        "sqlite:////",
        "sqlite:///folder/",
        "sqlite:///state.db?mode=ro",
        "redis://",
        "redis://:hunter2-secret@127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/abc",
        "unix:///run/redis.sock",
    ],
)
def test_bad_state_url_is_one_line_naming_the_key(
    url: str, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A bad STATE_URL stops the CLI with exit 2 and one line naming STATE_URL, no password."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")
    monkeypatch.setenv("STATE_URL", url)
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imgbot: configuration error: STATE_URL: ")
    assert "hunter2-secret" not in done.stderr


def test_systemd_state_directory_is_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """STATE_DIRECTORY (set by systemd's StateDirectory=) shares our STATE_ prefix but is not
    warned about as a misspelled setting."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
