"""The processes the benchmark starts and always stops: MinIO, http.server and the two bots."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgbot.bucket.admin import BucketAdmin
from imgbot.config.settings import Settings, load_settings
from imgbot.setup import setup
from tests.processes import ROOT, free_port

# imgbot reads these from the environment; the benchmark passes its own and nothing inherited.
_IMGBOT_KEYS = ("S3_", "DINGTALK_", "IMAGE_", "METRICS_", "MAX_", "USER_", "PREVIEW_", "PUBLIC_")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without imgbot's keys, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_IMGBOT_KEYS)}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


@dataclass
class Child:
    """One child process, its log file and how to stop it."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    @classmethod
    def start(
        cls,
        name: str,
        argv: list[str],
        workdir: Path,
        env: dict[str, str],
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        """Start ``argv`` in ``workdir`` with its output in ``workdir/<name>.log``."""
        log = workdir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        return cls(name, process, log, stop_signal)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def check_alive(self) -> None:
        """Raise if the process has exited, naming its log."""
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Signal the process and wait; kill it if it does not exit in ``timeout`` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """The process's current resident set size (VmRSS) in MB."""
    return _status_kb(pid, "VmRSS") / 1024


def tree_rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` and all its descendants, summed, in MB (0 once it
    has ended). Pages shared between them count once per process: an upper bound."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for member in tree:
        try:
            total += _status_kb(member, "VmRSS")
        except (OSError, RuntimeError):  # ended, or a zombie without memory
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, in seconds."""
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {key}")


def wait_http(url: str, child: Child, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers (any HTTP status), failing early if ``child`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:g} s")


@dataclass
class Minio:
    """A MinIO server on a free port with its own data folder and root keys."""

    binary: str
    workdir: Path
    access_key: str = "imgbot-bench-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start MinIO and wait until it is ready."""
        data = self.workdir / "minio-data"
        data.mkdir(parents=True, exist_ok=True)
        env = child_env(
            MINIO_ROOT_USER=self.access_key,
            MINIO_ROOT_PASSWORD=self.secret_key,
            MINIO_UPDATE="off",
            MINIO_BROWSER="off",
            MINIO_CI_CD="1",
        )
        argv = [self.binary, "server", str(data), "--address", f"127.0.0.1:{self.port}", "--quiet"]
        self.child = Child.start("minio", argv, self.workdir, env)
        wait_http(f"{self.endpoint}/minio/health/ready", self.child)

    async def bucket(self, bucket: str, **more: Any) -> Settings:
        """Settings for a bot on ``bucket`` of this MinIO (root keys, no metrics port, ``more``
        on top), with the bucket set up as ``imgbot setup`` does."""
        settings = load_settings(
            s3_endpoint=self.endpoint,
            s3_access_key=self.access_key,
            s3_secret_key=self.secret_key,
            s3_bucket=bucket,
            metrics_port=0,
            **more,
        )
        await asyncio.to_thread(setup, BucketAdmin.from_settings(settings), settings)
        return settings

    def stop(self) -> None:
        """Stop MinIO."""
        if self.child is not None:
            self.child.stop()


def start_http_server(folder: Path, workdir: Path) -> tuple[Child, str]:
    """``python -m http.server`` on a free port serving ``folder``; return it and its base URL."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(folder),
    ]
    child = Child.start("http-server", argv, workdir, child_env())
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/", child)
    return child, base
