"""Shared fixtures: a clean environment per test, one real MinIO and Redis per session, the
provider stand-ins, the DingTalk simulator, an HTTP session, and the CLI in a process or in this
one."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import boto3
import pytest
from botocore.config import Config

from imgbot.config.settings import Settings, load_settings
from imgbot.simulator import DingTalkSimulator
from tests.fake_providers import FakeProviders, FakeProvidersThread
from tests.minio_server import MinioServer, minio_binary
from tests.redis_server import RedisServer, redis_binary
from tests.seaweedfs_server import SeaweedServer, weed_binary

_OUR_KEYS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with none of imgbot's variables set and no .env in its directory."""
    for key in list(os.environ):
        if key in _OUR_KEYS:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_retry_waits() -> Iterator[list[float]]:
    """Retries in this process wait no time; yields the waits they asked for, in order."""
    from imgbot.net import retry

    retry.set_testing(True)
    yield retry.testing_waits
    retry.set_testing(False)


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real MinIO server on a free port, for the whole session."""
    server = MinioServer(minio_binary(), tmp_path_factory.mktemp("minio") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real SeaweedFS (``weed mini``: S3, admin and lifecycle worker) for the whole session."""
    server = SeaweedServer(weed_binary(), tmp_path_factory.mktemp("seaweedfs") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free port, for the whole session (one per xdist worker)."""
    server = RedisServer(redis_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session Redis, emptied for this test (tests that kill it restart it first)."""
    if redis_server.process is None or not redis_server.ping():
        redis_server.restart()
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        assert sock.recv(64).startswith(b"+OK")
    return redis_server.url


@pytest.fixture
def bucket() -> str:
    """A bucket name no other test uses."""
    return f"t-{uuid.uuid4().hex[:20]}"


def point_at_s3(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    keys: tuple[str, str],
    bucket: str,
    **more: str,
) -> dict[str, str]:
    """Set (and return) imgbot's variables for the S3 server at ``endpoint``: its keys (access,
    secret), ``bucket``, and ``more`` by setting name (``s3_provider="s3"``)."""
    env = {
        "S3_ENDPOINT": endpoint,
        "S3_ACCESS_KEY": keys[0],
        "S3_SECRET_KEY": keys[1],
        "S3_BUCKET": bucket,
        **{name.upper(): value for name, value in more.items()},
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def s3_env(minio: MinioServer, bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing imgbot at the session MinIO and this test's bucket."""
    return point_at_s3(monkeypatch, minio.endpoint, (minio.access_key, minio.secret_key), bucket)


@pytest.fixture
def admin_s3(minio: MinioServer):  # type: ignore[no-untyped-def]
    """An independent boto3 client with the MinIO root credentials."""
    return admin_client(minio)


def admin_client(minio: MinioServer):  # type: ignore[no-untyped-def]
    """An independent boto3 client with ``minio``'s root credentials."""
    return s3_client(minio.endpoint, minio.access_key, minio.secret_key)


def s3_client(endpoint: str, access: str, secret: str):  # type: ignore[no-untyped-def]
    """An independent boto3 client (path addressing, checksums only where required) for the S3
    server at ``endpoint`` with these keys."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    """The DashScope and OpenAI stand-ins on a free port, on the test's own loop."""
    server = FakeProviders()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def providers_thread() -> Iterator[FakeProvidersThread]:
    """The stand-ins on a loop of their own (``.fake``), for tests that block on a process."""
    runner = FakeProvidersThread()
    runner.start()
    yield runner
    runner.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def simulator() -> AsyncIterator[DingTalkSimulator]:
    """A DingTalk simulator on a free port."""
    sim = DingTalkSimulator()
    await sim.start()
    yield sim
    await sim.stop()


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_here(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``run_cli`` without the process: ``imgbot.cli.main(ARGS)`` in this one, its output
    captured, the logging it configures undone afterwards. ``run_cli`` proves the entry point."""
    from imgbot.cli import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        root = logging.getLogger()
        handlers, levels = root.handlers[:], _logger_levels()
        capsys.readouterr()
        try:
            code = main(list(args))
        finally:
            for handler in root.handlers[:]:
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            for logger, level in levels.items():
                logger.setLevel(level)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["imgbot", *args], code, out, err)

    return run


def _logger_levels() -> dict[logging.Logger, int]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return {logger: logger.level for logger in loggers if isinstance(logger, logging.Logger)}


def set_up_bucket() -> None:
    """What ``imgbot setup`` does, in this process, with the settings in the environment: the
    preparation of tests that are about something else."""
    from imgbot.bucket.admin import BucketAdmin
    from imgbot.setup import setup

    settings = load_settings()
    setup(BucketAdmin.from_settings(settings), settings)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m imgbot ARGS`` with the current environment, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "imgbot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ),
    )
