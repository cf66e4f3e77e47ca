"""Where settings come from: a broken .env is one line; misspelled keys are named, not ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CliRunner

KEYS = "S3_ACCESS_KEY=a\nS3_SECRET_KEY=b\n"


def test_non_utf8_env_file_is_one_line(tmp_path: Path, cli_here: CliRunner) -> None:
    """A Latin-1 comment in .env: exit 2, one line naming .env, the byte's offset and line."""
    (tmp_path / ".env").write_bytes(KEYS.encode() + "# réglages\n".encode("latin-1"))
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "imgbot: configuration error: .env: is not UTF-8: byte 0xe9 at offset 35 (line 3); "
        "save the file as UTF-8"
    ]


def test_env_file_with_byte_order_mark_is_read(tmp_path: Path, cli_here: CliRunner) -> None:
    """A UTF-8 .env saved with a byte-order mark still sets its first key."""
    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbf" + KEYS.encode() + b"S3_BUCKET=bom-bucket\n")
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 0, done.stderr
    assert "/bom-bucket/imagegen/x.png?" in done.stdout and done.stderr == ""


@pytest.mark.parametrize("where", ["env file", "environment"])
def test_misspelled_key_is_warned_with_the_nearest_key(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """S3_BUKET is named on stderr with S3_BUCKET as the likely key; the command still works."""
    if where == "env file":
        (tmp_path / ".env").write_text(KEYS + "S3_BUKET=mine\n", encoding="utf-8")
    else:
        (tmp_path / ".env").write_text(KEYS, encoding="utf-8")
        monkeypatch.setenv("S3_BUKET", "mine")
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.strip().splitlines()
    source = ".env" if where == "env file" else "the environment"
    assert line == (
        f"imgbot: warning: S3_BUKET (in {source}) is not an imgbot setting and is ignored; "
        "did you mean S3_BUCKET?"
    )


def test_foreign_and_real_keys_are_not_warned(tmp_path: Path, cli_here: CliRunner) -> None:
    """MinIO's keys in a shared .env and real settings (DINGTALK_OPENAPI_ENDPOINT) pass silently;
    an unknown key with our prefix and no close match is still named."""
    (tmp_path / ".env").write_text(
        KEYS
        + "MINIO_ROOT_USER=admin\nMINIO_ROOT_PASSWORD=secret123\nCONSOLE_PORT=9001\n"
        + "DINGTALK_OPENAPI_ENDPOINT=https://api.dingtalk.com\nPREVIEW_SOMETHING=1\n",
        encoding="utf-8",
    )
    done = cli_here("url", "imagegen/x.png")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        "imgbot: warning: PREVIEW_SOMETHING (in .env) is not an imgbot setting and is ignored"
    ]
