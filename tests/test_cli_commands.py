"""Which command needs what: only commands that draw need the generator's keys; only the CLI
prints."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.images import photo_png
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
NEEDS_KEY = "imgbot: configuration error: OPENAI_API_KEY: required for this IMAGE_GENERATOR"


@pytest.fixture
def openai_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGE_GENERATOR=openai with its model but no OPENAI_API_KEY."""
    monkeypatch.setenv("IMAGE_GENERATOR", "openai")
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "gpt-image-1")


@pytest.mark.minio
@pytest.mark.usefixtures("openai_without_key")
def test_publish_needs_no_generator_key(s3_env: dict[str, str], tmp_path: Path) -> None:
    """publish stores a file and prints its links although the generator's key is missing."""
    assert run_cli("setup").returncode == 0
    (tmp_path / "photo.png").write_bytes(photo_png(64))
    done = run_cli("publish", str(tmp_path / "photo.png"), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["key"].startswith("imagegen/")


@pytest.mark.usefixtures("openai_without_key")
def test_draw_names_the_missing_generator_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """draw stops before any work with one line naming OPENAI_API_KEY, exit 2."""
    monkeypatch.setenv("S3_ACCESS_KEY", "a")
    monkeypatch.setenv("S3_SECRET_KEY", "b")
    monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens
    done = run_cli("draw", "一只猫")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().splitlines() == [NEEDS_KEY]


@pytest.mark.usefixtures("openai_without_key")
def test_run_names_the_missing_generator_key_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """run stops at start with one line naming OPENAI_API_KEY, exit 2, before connecting."""
    for key, value in {
        "S3_ACCESS_KEY": "a",
        "S3_SECRET_KEY": "b",
        "DINGTALK_CLIENT_ID": "id",
        "DINGTALK_CLIENT_SECRET": "secret",
        "DINGTALK_OPENAPI_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "METRICS_PORT": "0",
    }.items():
        monkeypatch.setenv(key, value)
    done = run_cli("run", timeout=30)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().splitlines() == [NEEDS_KEY]


@pytest.mark.usefixtures("openai_without_key")
def test_simulate_names_the_missing_generator_key_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """simulate stops at start with one line naming OPENAI_API_KEY, exit 2, and shows no chat
    page."""
    for key, value in {
        "S3_ACCESS_KEY": "a",
        "S3_SECRET_KEY": "b",
        "SIMULATOR_PORT": "0",
        "METRICS_PORT": "0",
    }.items():
        monkeypatch.setenv(key, value)
    done = run_cli("simulate", timeout=30)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().splitlines() == [NEEDS_KEY]


@pytest.mark.minio
@pytest.mark.usefixtures("openai_without_key")
def test_doctor_reports_the_missing_generator_key(s3_env: dict[str, str]) -> None:
    """doctor runs its checks and reports the missing OPENAI_API_KEY as a configuration problem."""
    assert run_cli("setup").returncode == 0
    done = run_cli("doctor", "--json")
    assert done.returncode == 1, done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert checks["configuration"]["ok"] is False
    assert checks["configuration"]["detail"] == "OPENAI_API_KEY: required for this IMAGE_GENERATOR"
    assert checks["write"]["ok"] is True  # the other checks still ran


def test_only_the_cli_prints() -> None:
    """No module but imgbot/cli.py calls print() or writes to sys.stdout/sys.stderr itself."""
    printing = []
    for path in sorted((ROOT / "imgbot").rglob("*.py")):
        if path == ROOT / "imgbot" / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name == "print" or name.startswith(("sys.stdout.", "sys.stderr.")):
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert printing == []
