"""A storage server that fails on its own side (a real SeaweedFS out of volumes): doctor blames
the server, not the keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CliRunner, s3_client
from tests.seaweedfs_server import SeaweedServer, weed_binary


class FullSeaweed(SeaweedServer):
    """``weed mini`` allowed a single volume: a bucket takes seven, so every upload with content
    fails with InternalError (an empty object needs no volume and still succeeds)."""

    def arguments(self) -> list[str]:
        return [
            "-volume.max=1" if one.startswith("-volume.max=") else one
            for one in super().arguments()
        ]


@pytest.fixture(scope="module")
def full_weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real SeaweedFS whose volume server may hold one volume, for this module."""
    server = FullSeaweed(weed_binary(), tmp_path_factory.mktemp("weed-full") / "data")
    server.start()
    # The first bucket takes the one volume there is; every later bucket finds none.
    first = s3_client(server.endpoint, server.access_key, server.secret_key)
    first.create_bucket(Bucket="takes-the-volume")
    first.put_object(Bucket="takes-the-volume", Key="x", Body=b"x" * 5000)
    yield server
    server.stop()


@pytest.fixture
def full_env(full_weed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing imgbot at the volume-starved SeaweedFS and a fresh bucket."""
    env = {
        "S3_PROVIDER": "s3",
        "S3_ENDPOINT": full_weed.endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY": full_weed.access_key,
        "S3_SECRET_KEY": full_weed.secret_key,
        "S3_BUCKET": f"t-{uuid.uuid4().hex[:20]}",
        "S3_ATTEMPTS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.mark.seaweedfs
def test_doctor_blames_the_server_not_the_keys_when_writes_fail_inside_it(
    full_env: dict[str, str], cli_here: CliRunner, tmp_path: Path
) -> None:
    """With SeaweedFS out of volumes every upload fails with InternalError: doctor's write line
    says the server failed (and how to give SeaweedFS room), never that the key needs a right."""
    assert cli_here("setup").returncode == 0
    out = cli_here("doctor").stdout
    [write] = [line for line in out.splitlines() if line.split()[1:2] == ["write"]]
    assert write.startswith("PROBLEM") and "InternalError" in write, out
    fix = write.split("->", 1)[1]
    assert "PutObject" not in write and "needs" not in fix and "allowed" not in fix
    assert "server failed, not the keys" in fix and "-volume.max" in fix
