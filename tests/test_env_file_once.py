"""The .env file is read once per command, and its values reach the settings from that one read:
the environment overrides it, explicit overrides override both."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgbot.config.settings import load_settings
from tests.conftest import run_cli

KEYS = "S3_ACCESS_KEY=a\nS3_SECRET_KEY=b\n"


class EnvPipe:
    """``.env`` as a named pipe that gives ``text`` to one reader only: a second open for reading
    would wait for a writer that never comes."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text.encode()
        self.served = False
        os.mkfifo(path)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self.path.open("wb") as pipe:  # blocks until a reader opens the pipe
            if self.served:
                return  # close() opened it to end this thread
            self.served = True
            with contextlib.suppress(BrokenPipeError):
                pipe.write(self.text)

    def close(self) -> None:
        """End the writer thread: if no reader came, open the pipe once so its open returns."""
        if self._thread.is_alive():
            self.served = True
            reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                self._thread.join(10)
            finally:
                os.close(reader)
        assert not self._thread.is_alive()


@pytest.fixture
def env_pipe(tmp_path: Path) -> Iterator[EnvPipe]:
    """A .env pipe holding the keys, a misspelled key and a bucket, for one reader."""
    pipe = EnvPipe(tmp_path / ".env", KEYS + "S3_BUKET=mine\nS3_BUCKET=from-the-pipe\n")
    yield pipe
    pipe.close()


def test_env_file_is_read_once_per_command(env_pipe: EnvPipe) -> None:
    """`imgbot url` with .env a pipe that answers one read: the keys, the misspelled-key warning
    and the bucket all come from that one read (a second read would wait for ever)."""
    done = run_cli("url", "imagegen/x.png", timeout=30)
    assert done.returncode == 0, done.stderr
    assert "/from-the-pipe/imagegen/x.png?" in done.stdout
    assert done.stderr.strip().splitlines() == [
        "imgbot: warning: S3_BUKET (in .env) is not an imgbot setting and is ignored; "
        "did you mean S3_BUCKET?"
    ]
    assert env_pipe.served


def test_environment_overrides_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key in both the environment and .env takes the environment's value (any case); a key
    only in .env takes the file's; a blank one in the environment means unset."""
    (tmp_path / ".env").write_text(
        KEYS + "S3_BUCKET=file-bucket\nS3_PREFIX=file/\nLOG_LEVEL=DEBUG\n", encoding="utf-8"
    )
    monkeypatch.setenv("S3_BUCKET", "env-bucket")
    monkeypatch.setenv("s3_prefix", "env/")
    monkeypatch.setenv("LOG_LEVEL", "")
    done = run_cli("url", "env/x.png")
    assert done.returncode == 0, done.stderr
    assert "/env-bucket/env/x.png?" in done.stdout
    settings = load_settings()
    assert (settings.s3_bucket, settings.s3_prefix, settings.log_level) == (
        "env-bucket",
        "env/",
        "INFO",
    )


def test_overrides_win_and_only_settings_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explicit overrides beat the environment and .env; .env keys that are no setting (or name
    pydantic-settings' own parameters) change nothing."""
    (tmp_path / "other.env").write_text("S3_BUCKET=elsewhere\n", encoding="utf-8")
    (tmp_path / ".env").write_text(
        KEYS + "S3_BUCKET=file-bucket\n_ENV_FILE=other.env\nMINIO_ROOT_USER=admin\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("S3_BUCKET", "env-bucket")
    assert load_settings(s3_bucket="override-bucket").s3_bucket == "override-bucket"
    assert load_settings().s3_bucket == "env-bucket"
    monkeypatch.delenv("S3_BUCKET")
    assert load_settings().s3_bucket == "file-bucket"
