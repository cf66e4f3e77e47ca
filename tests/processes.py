"""What the test servers (MinIO, SeaweedFS, versitygw) share: free loopback ports, binaries
built by a script under infra/, children logging to a file, waiting until one answers (failing
early, naming the server, when it exits), stopping it, and the virtual-host domain."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Virtual-host requests name the bucket in front of this domain (BUCKET.s3.test); every test S3
# server is told it, and the contract suite resolves it through the server itself.
VIRTUAL_HOST_DOMAIN = "s3.test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_free(port: int) -> bool:
    """True when nothing listens on ``port`` of 127.0.0.1 right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def built_binary(script: str) -> str:
    """Run the build script ``script`` (relative to the project, e.g. infra/minio/build.sh) and
    return the path it prints last; it builds on first use and fails loudly if it cannot."""
    done = subprocess.run(["bash", str(ROOT / script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def spawn_logged(
    argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output (stdout and stderr) appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(list(argv), env=env, stdout=log, stderr=subprocess.STDOUT)


def answers(url: str, statuses: Collection[int] = (200,)) -> bool:
    """True when ``url`` answers with one of ``statuses``."""
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return int(answer.status) in statuses
    except urllib.error.HTTPError as exc:
        return exc.code in statuses
    except OSError:
        return False


def wait_ready(
    url: str,
    processes: Sequence[subprocess.Popen[bytes]],
    name: str,
    log_path: Path,
    timeout: float = 30.0,
    *,
    statuses: Collection[int] = (200,),
    also: Callable[[], bool] = lambda: True,
) -> None:
    """Poll ``url`` until it answers one of ``statuses`` and ``also()`` holds; fail early, naming
    the server ``name`` and its log, when one of ``processes`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        if answers(url, statuses) and also():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} was not ready at {url} in time; see {log_path}")


def stop(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """Terminate ``process`` (if it still runs) and wait; kill it after ``grace`` seconds."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
