"""`make run` and `make stop` in a copy of the project: MinIO's root keys never reach the bot."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.minio_server import MinioServer
from tests.processes import ROOT, free_port

pytestmark = [pytest.mark.minio, pytest.mark.infra]
FILES = [
    "scripts/run.sh",
    "infra/go-install.sh",
    "infra/minio/build.sh",
    "infra/minio/start.sh",
    "infra/minio/stop.sh",
    "infra/stop-pid.sh",
    "infra/seaweedfs/start.sh",
    "infra/seaweedfs/stop.sh",
    ".env.example",
    "Makefile",
]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the files `make run` uses, with the real venv; its MinIO is stopped after."""
    root = tmp_path / "project"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    yield root
    subprocess.run(["bash", "infra/minio/stop.sh"], cwd=root, capture_output=True, check=False)
    subprocess.run(["bash", "infra/seaweedfs/stop.sh"], cwd=root, capture_output=True, check=False)


def write_env(project: Path, **values: str) -> int:
    """.env from .env.example with a private port and the given keys; returns MinIO's port."""
    port = free_port()
    # Every port the run opens is private to this test: tests may run side by side.
    values = {
        "S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "SIMULATOR_PORT": "0",
        "METRICS_PORT": "0",
        **values,
    }
    lines = []
    for line in (project / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values.pop(key)}" if key in values else line)
    (project / ".env").write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]))
    return port


def run_script(project: Path) -> subprocess.Popen[str]:
    """scripts/run.sh started in ``project``, its output (stderr too) on a text pipe, with no
    S3_/MINIO_ variables of the test's own environment."""
    return subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "MINIO_"))},
            # The console's port is private to this run too (by default run.sh takes the S3 port
            # + 1, which a server of a test running beside this one may hold).
            "MINIO_CONSOLE_PORT": str(free_port()),
        },
    )


def run_until_simulator(project: Path) -> tuple[str, dict[str, str]]:
    """Run scripts/run.sh until the bot serves; return its output and the bot's environment."""
    output = []
    with run_script(project) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                output.append(line)
                if "chat page:" in line:
                    break
            assert process.poll() is None, "".join(output)
            environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
            bot_env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    return "".join(output), bot_env


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def link_credential(project: Path) -> str:
    """The access key id a link made with the project's .env carries."""
    done = subprocess.run(
        [str(project / ".venv/bin/imgbot"), "url", "imagegen/x.png"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("S3_")},
    )
    return done.stdout.split("X-Amz-Credential=", 1)[1].split("%2F", 1)[0]


def test_make_run_gives_the_bot_its_own_user_and_make_stop_stops_minio(project: Path) -> None:
    """A first run keeps root keys in .data (mode 600), the bot gets user imgbot; stop works."""
    port = write_env(project)
    output, bot_env = run_until_simulator(project)
    root = env_file(project / ".data/minio-root.env")
    assert (project / ".data/minio-root.env").stat().st_mode & 0o777 == 0o600
    assert (project / ".env").stat().st_mode & 0o077 == 0
    env = env_file(project / ".env")
    assert env["S3_ACCESS_KEY"] == "imgbot" and len(env["S3_SECRET_KEY"]) >= 30
    assert root["MINIO_ROOT_USER"] == "imgbot-admin"
    assert root["MINIO_ROOT_PASSWORD"] not in (project / ".env").read_text()
    assert root["MINIO_ROOT_PASSWORD"] not in output and env["S3_SECRET_KEY"] not in output
    assert "stop it with: make stop" in output
    assert root["MINIO_ROOT_PASSWORD"] not in "".join(bot_env.values())
    assert bot_env["S3_ACCESS_KEY"] == "imgbot"
    assert link_credential(project) == "imgbot"

    again, _ = run_until_simulator(project)  # a second run keeps the keys it made
    assert env_file(project / ".env") == env and "its keys are in .env" not in again

    stopped = subprocess.run(
        ["make", "-s", "stop"], cwd=project, capture_output=True, text=True, check=False
    )
    assert stopped.returncode == 0 and "stopped the local MinIO" in stopped.stdout
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/minio/health/live", timeout=2)
    assert not (project / ".data/minio.pid").exists()


def test_make_run_migrates_an_env_that_holds_the_root_keys(project: Path) -> None:
    """An .env from an earlier version (root keys as S3 keys) moves them to .data, keeps working."""
    write_env(project, S3_ACCESS_KEY="imgbot-admin", S3_SECRET_KEY="legacy-root-secret-123")
    output, _ = run_until_simulator(project)
    assert "moved MinIO's root keys (imgbot-admin) from .env" in output
    root = env_file(project / ".data/minio-root.env")
    assert root == {
        "MINIO_ROOT_USER": "imgbot-admin",
        "MINIO_ROOT_PASSWORD": "legacy-root-secret-123",
    }
    env = env_file(project / ".env")
    assert env["S3_ACCESS_KEY"] == "imgbot" and "legacy-root-secret-123" not in str(env)
    assert link_credential(project) == "imgbot"


@pytest.mark.seaweedfs
def test_make_run_with_local_s3_seaweedfs(project: Path) -> None:
    """LOCAL_S3=seaweedfs: make run starts SeaweedFS, sets the bucket up with its admin identity,
    the bot runs with the bot identity's keys (written to .env), the identities written grant
    what infra/seaweedfs/s3.json grants; make stop stops SeaweedFS."""
    from imgbot.config.settings import Settings
    from tests.seaweedfs_server import _port_with_free_twin, identities

    ports = {
        f"SEAWEEDFS_{name}_PORT": str(_port_with_free_twin(10000))
        for name in ("MASTER", "VOLUME", "FILER", "ADMIN")
    }
    s3_port = _port_with_free_twin(10000)
    write_env(project, LOCAL_S3="seaweedfs", S3_ENDPOINT=f"http://127.0.0.1:{s3_port}", **ports)
    output, bot_env = run_until_simulator(project)
    written = (project / ".data/seaweedfs/s3.json").read_text()
    assert (project / ".data/seaweedfs/s3.json").stat().st_mode & 0o777 == 0o600
    assert "lifecycle rule imgbot-expire-images set" in output
    env = env_file(project / ".env")
    assert env["S3_ACCESS_KEY"] == "imgbot" and env["S3_SECRET_KEY"] in written
    bucket = env.get("S3_BUCKET") or Settings.model_fields["s3_bucket"].default
    shipped = identities(bucket, ("admin", "secret"), ("bot", "secret"))
    assert actions(json.loads(written)) == actions(shipped)
    assert bot_env["S3_ACCESS_KEY"] == "imgbot" and bot_env["S3_PROVIDER"] == "s3"
    assert bot_env["S3_ENDPOINT"] == f"http://127.0.0.1:{s3_port}"
    admin_secret = written.split('"secretKey": "', 1)[1].split('"', 1)[0]
    assert admin_secret not in output and admin_secret not in "".join(bot_env.values())
    stopped = subprocess.run(
        ["make", "-s", "stop"], cwd=project, capture_output=True, text=True, check=False
    )
    assert stopped.returncode == 0 and "stopped the local SeaweedFS" in stopped.stdout
    assert not (project / ".data/seaweedfs.pid").exists()


def actions(identities: dict[str, Any]) -> dict[str, list[str]]:
    """Each identity's actions by its name."""
    return {identity["name"]: identity["actions"] for identity in identities["identities"]}


def run_to_end(project: Path) -> tuple[int | None, str]:
    """Run scripts/run.sh until it exits or the bot serves (then stop it); return its exit code
    (None when the bot came up) and its output."""
    output = []
    with run_script(project) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "chat page:" in line:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
                return None, "".join(output)
        return process.wait(timeout=30), "".join(output)


def test_make_run_makes_the_bot_user_anew_when_env_keys_fail(project: Path) -> None:
    """Keys in .env that MinIO refuses (SeaweedFS's, left by LOCAL_S3=seaweedfs) make run.sh
    redo the bot user; setup's steps show as they happen, even when the bot user step fails."""
    import boto3

    port = write_env(project)
    run_until_simulator(project)
    endpoint = f"http://127.0.0.1:{port}"
    root = env_file(project / ".data/minio-root.env")
    admin = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=root["MINIO_ROOT_USER"],
        aws_secret_access_key=root["MINIO_ROOT_PASSWORD"],
    )
    env = env_file(project / ".env")
    stale = "seaweedfs-bot-identity-secret-0000"
    (project / ".env").write_text(
        (project / ".env").read_text().replace(env["S3_SECRET_KEY"], stale)
    )
    # Another `setup --bot-user` holds the lease: the bot user step fails after the others ran.
    lease = ".imgbot-setup/bot-user-imgbot.lease"
    admin.put_object(Bucket=env["S3_BUCKET"], Key=lease, Body=b"{}")
    code, output = run_to_end(project)
    assert code == 1, output
    assert "do not work on this MinIO" in output
    assert "lifecycle rule imgbot-expire-images" in output.split("making the bot user", 1)[1]
    assert "is running" in output
    admin.delete_object(Bucket=env["S3_BUCKET"], Key=lease)
    output, bot_env = run_until_simulator(project)
    fresh = env_file(project / ".env")
    assert fresh["S3_ACCESS_KEY"] == "imgbot" and fresh["S3_SECRET_KEY"] not in (stale, "")
    assert bot_env["S3_SECRET_KEY"] == fresh["S3_SECRET_KEY"]
    assert fresh["S3_SECRET_KEY"] not in output
    bot = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=fresh["S3_ACCESS_KEY"],
        aws_secret_access_key=fresh["S3_SECRET_KEY"],
    )
    bot.put_object(Bucket=env["S3_BUCKET"], Key="imagegen/works.png", Body=b"x")


def test_seaweedfs_start_refuses_a_port_minio_answers_on(project: Path, minio: MinioServer) -> None:
    """infra/seaweedfs/start.sh on a port where MinIO answers (403 to anyone, like SeaweedFS)
    says the port is taken, not that SeaweedFS already answers."""
    done = subprocess.run(
        ["bash", "infra/seaweedfs/start.sh"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "SEAWEEDFS_PORT": minio.endpoint.rsplit(":", 1)[1]},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "taken by another program" in done.stderr
    assert "already answers" not in done.stdout
