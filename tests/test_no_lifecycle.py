"""A real S3 server without the lifecycle API (versitygw): setup says so and stops short unless
something else deletes old images, doctor says "not supported" and goes on, the bot is healthy,
and `setup --bot-user` refuses before it changes anything."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imgbot.bucket.rules import bot_user_policy
from imgbot.config.settings import load_settings
from imgbot.errors import StorageError
from imgbot.setup import NO_EXPIRY
from imgbot.simulator import DingTalkSimulator
from imgbot.storage_s3 import BAD_KEYS, S3Storage
from tests.bot_harness import running_bot
from tests.conftest import CliRunner, point_at_s3, s3_client
from tests.minio_server import MinioServer
from tests.polling import wait_until
from tests.versitygw_server import VersityServer, versitygw_binary


@pytest.fixture(scope="module")
def versitygw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersityServer]:
    """A real versitygw on a free port (posix backend), for this module."""
    server = VersityServer(versitygw_binary(), tmp_path_factory.mktemp("versitygw"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def vgw_env(
    versitygw: VersityServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment pointing imgbot at versitygw (a plain S3 server) and a fresh bucket."""
    keys = (versitygw.access_key, versitygw.secret_key)
    return point_at_s3(
        monkeypatch, versitygw.endpoint, keys, bucket, s3_provider="s3", s3_region="us-east-1"
    )


def bucket_exists(client: Any, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


def test_versitygw_really_has_no_lifecycle_api(
    versitygw: VersityServer, vgw_env: dict[str, str]
) -> None:
    """The server the tests use answers the lifecycle calls with 501 NotImplemented."""
    client = s3_client(versitygw.endpoint, versitygw.access_key, versitygw.secret_key)
    client.create_bucket(Bucket=vgw_env["S3_BUCKET"])
    with pytest.raises(ClientError) as caught:
        client.get_bucket_lifecycle_configuration(Bucket=vgw_env["S3_BUCKET"])
    assert caught.value.response["Error"]["Code"] == "NotImplemented"


def test_setup_says_storage_cannot_expire_and_exits_nonzero(
    versitygw: VersityServer, vgw_env: dict[str, str], cli_here: CliRunner
) -> None:
    """Setup prints each step as done (bucket created, then the one no-expiry line, then the
    bucket's privacy), keeps the bucket private, and exits 1 naming the way out."""
    done = cli_here("setup")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    bucket = vgw_env["S3_BUCKET"]
    assert lines[0] == f"bucket {bucket} created"
    assert lines[1] == f"lifecycle: {NO_EXPIRY}"
    assert any("is private" in line for line in lines[2:])
    assert "--retention-elsewhere" in done.stderr and "RETENTION_MANAGED_ELSEWHERE" in done.stderr
    assert "AccessDenied" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    client = s3_client(versitygw.endpoint, versitygw.access_key, versitygw.secret_key)
    assert bucket_exists(client, bucket)
    # A second run says the bucket exists and fails the same way: nothing else changed.
    again = cli_here("setup")
    assert again.returncode == 1 and again.stdout.splitlines()[0] == f"bucket {bucket} exists"


def test_setup_succeeds_when_retention_is_named_elsewhere(
    vgw_env: dict[str, str], cli_here: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--retention-elsewhere (or RETENTION_MANAGED_ELSEWHERE) names what deletes old images;
    setup then exits 0 and says who does it."""
    done = cli_here("setup", "--retention-elsewhere", "cron: rclone delete --min-age 7d")
    assert done.returncode == 0, done.stderr
    assert "deleted by: cron: rclone delete --min-age 7d" in done.stdout
    monkeypatch.setenv("RETENTION_MANAGED_ELSEWHERE", "the provider's console rule")
    again = cli_here("setup")
    assert again.returncode == 0, again.stderr
    assert "deleted by: the provider's console rule" in again.stdout
    bad = cli_here("setup", "--retention-elsewhere", "two\nlines")
    assert bad.returncode == 2 and "--retention-elsewhere" in bad.stderr


def test_doctor_says_lifecycle_not_supported_and_runs_the_rest(
    vgw_env: dict[str, str], cli_here: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Doctor reports "lifecycle: not supported by this server", no key or policy problem, and
    still runs the checks after it (links); with retention named elsewhere it is not a problem."""
    assert cli_here("setup", "--retention-elsewhere", "cron").returncode == 0
    done = cli_here("doctor")
    out = done.stdout
    [lifecycle] = [line for line in out.splitlines() if " lifecycle " in f" {line} "]
    assert lifecycle.startswith("PROBLEM") and "not supported by this server" in lifecycle
    assert "ok      credentials" in out and "ok      bucket" in out
    assert "policy" not in lifecycle and "key" not in lifecycle.lower()
    names = [line.split()[1] for line in out.splitlines()]
    assert names.index("lifecycle") < len(names) - 2  # checks after it ran
    assert any(name in ("links", "private", "link") for name in names[names.index("lifecycle") :])
    monkeypatch.setenv("RETENTION_MANAGED_ELSEWHERE", "cron: rclone delete --min-age 7d")
    again = cli_here("doctor")
    [lifecycle] = [line for line in again.stdout.splitlines() if " lifecycle " in f" {line} "]
    assert lifecycle.startswith("ok") and "deleted by: cron: rclone delete" in lifecycle


def test_health_probe_needs_no_lifecycle_api(
    versitygw: VersityServer, vgw_env: dict[str, str], cli_here: CliRunner
) -> None:
    """The storage probe passes on versitygw (first writing its empty object, then finding it),
    and still tells wrong keys and a missing bucket apart."""
    assert cli_here("setup", "--retention-elsewhere", "cron").returncode == 0
    settings = load_settings()
    storage = S3Storage.from_settings(settings)
    storage.probe()
    storage.probe()  # the object is there now: "already there" is healthy too
    client = s3_client(versitygw.endpoint, versitygw.access_key, versitygw.secret_key)
    head = client.head_object(Bucket=vgw_env["S3_BUCKET"], Key="imagegen/.imgbot-probe")
    assert head["ContentLength"] == 0
    wrong = S3Storage.from_settings(load_settings(s3_secret_key="not-the-secret-0000"))
    with pytest.raises(StorageError) as caught:
        wrong.probe()
    assert caught.value.code in BAD_KEYS
    missing = S3Storage.from_settings(load_settings(s3_bucket="t-no-such-bucket-here"))
    with pytest.raises(StorageError) as caught:
        missing.probe()
    assert caught.value.code == "NoSuchBucket"


async def test_bot_on_a_server_without_lifecycle_is_healthy(
    vgw_env: dict[str, str], simulator: DingTalkSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A running bot's /healthz report turns healthy on versitygw (the probe reads no
    lifecycle configuration), and its usage refresh says the figures are unavailable there."""
    caplog.set_level(logging.INFO, logger="imgbot.service.usage")
    async with running_bot(simulator, retention_managed_elsewhere="cron") as bot:
        await wait_until(lambda: bot.health()[0], timeout=30, what="healthy")
        assert bot.health()[1]["storage_ok"] is True
        await wait_until(
            lambda: [r for r in caplog.records if "offers no usage figures" in r.getMessage()],
            what="usage refreshed in the background",
        )
        assert bot.metrics.registry.get_sample_value("imgbot_storage_usage_available") == 0


def test_bot_user_with_plain_s3_refuses_before_changing_anything(
    vgw_env: dict[str, str], versitygw: VersityServer, cli_here: CliRunner
) -> None:
    """`setup --bot-user` with S3_PROVIDER=s3 refuses first: no bucket is created."""
    done = cli_here("setup", "--bot-user", "imgbot")
    assert done.returncode == 2 and "MinIO only" in done.stderr
    assert done.stdout == ""
    client = s3_client(versitygw.endpoint, versitygw.access_key, versitygw.secret_key)
    assert not bucket_exists(client, vgw_env["S3_BUCKET"])


def test_bot_user_names_a_server_that_is_not_minio(
    vgw_env: dict[str, str],
    versitygw: VersityServer,
    cli_here: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3_PROVIDER=minio in front of another server: `--bot-user` says it is not MinIO (not
    "admin API refused ... 404"), exits 2 as a configuration error and changes nothing."""
    monkeypatch.setenv("S3_PROVIDER", "minio")
    done = cli_here("setup", "--bot-user", "imgbot")
    assert done.returncode == 2
    assert "configuration error" in done.stderr and "S3_PROVIDER" in done.stderr
    assert "it is not MinIO" in done.stderr and "404" not in done.stderr
    assert done.stdout == ""
    client = s3_client(versitygw.endpoint, versitygw.access_key, versitygw.secret_key)
    assert not bucket_exists(client, vgw_env["S3_BUCKET"])


def test_doctor_names_a_server_that_is_not_minio(
    vgw_env: dict[str, str], cli_here: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Doctor with S3_PROVIDER=minio in front of another server says in its redundancy line
    that the server is not MinIO, and does not offer `setup --bot-user` for the keys."""
    assert cli_here("setup", "--retention-elsewhere", "cron").returncode == 0
    monkeypatch.setenv("S3_PROVIDER", "minio")
    out = cli_here("doctor").stdout
    [redundancy] = [line for line in out.splitlines() if "storage redundancy" in line]
    assert "not MinIO" in redundancy and "S3_PROVIDER" in redundancy
    [privilege] = [line for line in out.splitlines() if "least privilege" in line]
    assert "--bot-user" not in privilege and "not MinIO" in privilege


@pytest.mark.minio
def test_minimum_policy_is_writing_under_the_prefix(
    s3_env: dict[str, str], minio: MinioServer, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A MinIO user holding only s3:PutObject/s3:GetObject on the prefix passes the health probe;
    doctor then calls the lifecycle rule "not measured", not a key or policy problem."""
    from minio import MinioAdmin
    from minio.credentials.providers import StaticProvider

    assert cli_here("setup").returncode == 0
    bucket = s3_env["S3_BUCKET"]
    statements = bot_user_policy(bucket, "imagegen/")["Statement"]
    [objects_only] = [s for s in statements if "s3:PutObject" in s["Action"]]
    admin = MinioAdmin(
        endpoint=minio.endpoint.removeprefix("http://"),
        secure=False,
        credentials=StaticProvider(minio.access_key, minio.secret_key),
    )
    name, secret = f"min-{bucket[-10:]}", "minimum-secret-" + bucket[-10:]
    admin.user_add(name, secret)
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [objects_only]})
    admin.attach_policy([name], user=name)
    monkeypatch.setenv("S3_ACCESS_KEY", name)
    monkeypatch.setenv("S3_SECRET_KEY", secret)
    S3Storage.from_settings(load_settings()).probe()
    done = cli_here("doctor")
    [lifecycle] = [line for line in done.stdout.splitlines() if " lifecycle " in f" {line} "]
    assert lifecycle.startswith("ok") and "not measured" in lifecycle
    assert done.returncode == 0, done.stdout
