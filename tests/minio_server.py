"""Starts and stops a real MinIO server for the tests: free port, own data folder, own keys."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def minio_binary() -> str:
    """Path of the MinIO binary; builds it on first use (fails loudly if it cannot)."""
    done = subprocess.run(
        ["bash", str(ROOT / "infra/minio/build.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"building MinIO failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class MinioServer:
    """One running MinIO process."""

    binary: str
    data_dir: Path
    port: int = 0
    access_key: str = "imgbot-test-admin"
    secret_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start MinIO (on the same port and data when restarted) and wait until it is ready."""
        self.port = self.port or free_port()
        self.secret_key = self.secret_key or secrets.token_hex(16)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            "MINIO_CI_CD": "1",
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir.parent / "minio.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "server",
                    str(self.data_dir),
                    "--address",
                    f"127.0.0.1:{self.port}",
                    "--quiet",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"MinIO exited with {self.process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("MinIO did not become ready in time")

    def kill(self) -> None:
        """Kill MinIO abruptly (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop MinIO and wait for it to exit."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
