"""Starts and stops a real versitygw (posix backend) for the tests: an S3 server that checks every
signature but has no lifecycle API (``PutBucketLifecycleConfiguration`` answers 501) and no
MinIO admin API. Built once by infra/versitygw/build.sh into the cache MinIO uses."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.processes import built_binary, free_port, spawn_logged, stop, wait_ready


def versitygw_binary() -> str:
    """Path of the versitygw binary; builds it on first use (fails loudly if it cannot)."""
    return built_binary("infra/versitygw/build.sh")


@dataclass
class VersityServer:
    """One running versitygw on loopback, one root key pair, objects as files under ``root``."""

    binary: str
    root: Path
    port: int = 0
    access_key: str = "imgbot-test-vgw"
    secret_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start versitygw and wait until its health path answers."""
        self.port = self.port or free_port()
        self.secret_key = self.secret_key or secrets.token_hex(16)
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        log_path = self.root / "versitygw.log"
        # The root keys go in the environment, not on the command line (ps shows that).
        env = {**os.environ, "ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key}
        argv = [
            self.binary,
            "--port", f"127.0.0.1:{self.port}",
            "--health", "/health",
            "--quiet",
            "posix", str(data),
        ]  # fmt: skip
        self.process = spawn_logged(argv, log_path, env)
        wait_ready(f"{self.endpoint}/health", [self.process], "versitygw", log_path, timeout)

    def stop(self) -> None:
        """Stop versitygw and wait for it to exit."""
        stop(self.process)
        self.process = None
