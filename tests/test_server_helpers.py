"""The test servers' own helpers: a server that dies while starting is named in the error, and
a SeaweedFS started with given flags never silently overrides one of them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.minio_server import MinioServer
from tests.seaweedfs_server import SeaweedServer
from tests.versitygw_server import VersityServer

FALSE = shutil.which("false") or "/bin/false"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("MinIO", lambda tmp: MinioServer(FALSE, tmp / "data")),
        ("versitygw", lambda tmp: VersityServer(FALSE, tmp)),
        ("SeaweedFS", lambda tmp: SeaweedServer(FALSE, tmp / "data")),
    ],
)
def test_a_server_exiting_at_start_is_named(
    name: str, make: Callable[[Path], Any], tmp_path: Path
) -> None:
    """A server binary that exits at once fails the start with that server's name and its log."""
    server = make(tmp_path)
    with pytest.raises(RuntimeError, match=rf"^{name} exited with 1; see .*\.log$"):
        server.start(timeout=10)


def test_seaweedfs_refuses_flags_it_sets_itself(tmp_path: Path) -> None:
    """Given flags naming a port or folder the test server chooses are refused, not overridden."""
    server = SeaweedServer(FALSE, tmp_path / "data", flags=("-ip=127.0.0.1", "-s3.port=8333"))
    server.ports = dict.fromkeys(
        (
            "master",
            "master_grpc",
            "volume",
            "volume_grpc",
            "filer",
            "filer_grpc",
            "s3",
            "s3_grpc",
            "admin",
        ),
        1,
    )
    with pytest.raises(ValueError, match=re.escape("-s3.port=8333")):
        server.arguments()
    server.flags = ("-ip=127.0.0.1",)
    assert server.arguments()[:2] == ["mini", "-ip=127.0.0.1"]
