"""Starts and stops real MinIO servers for the tests: free ports, own data folders, own keys.

`MinioServer` is one process, on one drive or erasure-coded over several; `MinioCluster` is a
distributed deployment of several processes on loopback, one drive each.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import (
    VIRTUAL_HOST_DOMAIN,
    built_binary,
    free_port,
    spawn_logged,
    stop,
    wait_ready,
)


def minio_binary() -> str:
    """Path of the MinIO binary; builds it on first use (fails loudly if it cannot)."""
    return built_binary("infra/minio/build.sh")


@dataclass
class MinioServer:
    """One running MinIO process."""

    binary: str
    data_dir: Path
    port: int = 0
    access_key: str = "imgbot-test-admin"
    secret_key: str = ""
    process: subprocess.Popen[bytes] | None = None
    # More than one: a single node erasure-coded over that many drives (folders here).
    drives: int = 1
    # More MINIO_* settings for this server (e.g. the scanner's speed).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def volumes(self) -> list[str]:
        """The drive arguments: the data folder, or ``data{1...N}`` inside it (MinIO expands it)."""
        if self.drives == 1:
            return [str(self.data_dir)]
        return [f"{self.data_dir}/data{{1...{self.drives}}}"]

    def start(self, timeout: float = 30.0) -> None:
        """Start MinIO (on the same port and data when restarted) and wait until it is ready."""
        self.port = self.port or free_port()
        self.secret_key = self.secret_key or secrets.token_hex(16)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir.parent / "minio.log"
        self.process = spawn(
            self.binary,
            [*self.volumes(), "--address", f"127.0.0.1:{self.port}"],
            server_env(self.access_key, self.secret_key, **self.settings),
            log_path,
        )
        # /minio/health/ready answers before the object layer is up; cluster waits for it.
        url = f"{self.endpoint}/minio/health/cluster"
        wait_ready(url, [self.process], "MinIO", log_path, timeout)

    def kill(self) -> None:
        """Kill MinIO abruptly (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop MinIO and wait for it to exit."""
        stop(self.process)
        self.process = None


def server_env(access_key: str, secret_key: str, **extra: str) -> dict[str, str]:
    """The environment of a test MinIO: its root keys, no update checks, no console."""
    return {
        **os.environ,
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_UPDATE": "off",
        "MINIO_BROWSER": "off",
        # Lets drives share the root filesystem, as test folders do.
        "MINIO_CI_CD": "1",
        "MINIO_DOMAIN": VIRTUAL_HOST_DOMAIN,
        **extra,
    }


def spawn(
    binary: str, args: Sequence[str], env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``minio server ARGS --quiet`` with its output appended to ``log_path``."""
    return spawn_logged([binary, "server", *args, "--quiet"], log_path, env)


@dataclass
class MinioCluster:
    """A distributed MinIO of ``nodes`` processes on loopback ports, one drive (folder) each.

    Every node is started with the same list of endpoints, ``http://127.0.0.1:PORT/path``, one
    per node, and its own ``--address``; MinIO finds its own endpoint by the port.
    """

    binary: str
    root: Path
    nodes: int = 4
    access_key: str = "imgbot-test-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes] | None] = field(default_factory=list)

    def endpoint(self, node: int) -> str:
        """The S3 endpoint of node ``node`` (0-based)."""
        return f"http://127.0.0.1:{self.ports[node]}"

    def volumes(self) -> list[str]:
        """The endpoint list every node gets: one drive per node."""
        return [
            f"http://127.0.0.1:{port}{self.root}/node{n + 1}/data"
            for n, port in enumerate(self.ports)
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start every node and wait until each one answers that the deployment has quorum."""
        self.ports = self.ports or [free_port() for _ in range(self.nodes)]
        self.processes = [self._spawn(node) for node in range(self.nodes)]
        running = [p for p in self.processes if p is not None]
        try:
            # A node answers only once its own IAM and bucket metadata are loaded.
            for node in range(self.nodes):
                url = f"{self.endpoint(node)}/minio/health/cluster"
                log_path = self.root / f"node{node + 1}.log"
                wait_ready(url, running, f"MinIO node {node + 1}", log_path, timeout)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, node: int) -> subprocess.Popen[bytes]:
        (self.root / f"node{node + 1}/data").mkdir(parents=True, exist_ok=True)
        host = f"127.0.0.1:{self.ports[node]}"
        # Inside a container (/.dockerenv) MinIO refuses endpoints that resolve to loopback
        # unless told which one is its own: _MINIO_SERVER_LOCAL. Elsewhere it is ignored.
        env = server_env(self.access_key, self.secret_key, _MINIO_SERVER_LOCAL=host)
        return spawn(
            self.binary,
            [*self.volumes(), "--address", host],
            env,
            self.root / f"node{node + 1}.log",
        )

    def kill(self, node: int) -> None:
        """Kill one node abruptly (SIGKILL), as a crash or a power cut would."""
        process = self.processes[node]
        if process and process.poll() is None:
            process.kill()
            process.wait()
        self.processes[node] = None

    def stop(self) -> None:
        """Stop every node still running."""
        for process in self.processes:
            stop(process)
        self.processes = [None] * len(self.processes)
