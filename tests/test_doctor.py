"""`imgbot doctor` and `imgbot setup --bot-user` against a real MinIO."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import CliRunner, run_cli, set_up_bucket
from tests.images import photo_png
from tests.minio_server import MinioServer
from tests.processes import free_port

pytestmark = pytest.mark.minio


def bot_user(
    monkeypatch: pytest.MonkeyPatch, admin: dict[str, str], imgbot: CliRunner = run_cli
) -> tuple[str, str]:
    """Create the bot user with the admin keys (``imgbot setup --bot-user``), then switch the
    environment to its keys."""
    monkeypatch.setenv("S3_ACCESS_KEY", admin["S3_ACCESS_KEY"])
    monkeypatch.setenv("S3_SECRET_KEY", admin["S3_SECRET_KEY"])
    done = imgbot("setup", "--bot-user", "bot-" + admin["S3_BUCKET"][-10:])
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    access, secret = lines["S3_ACCESS_KEY"], lines["S3_SECRET_KEY"]
    monkeypatch.setenv("S3_ACCESS_KEY", access)
    monkeypatch.setenv("S3_SECRET_KEY", secret)
    return access, secret


def client(minio: MinioServer, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=minio.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            request_checksum_calculation="when_required",
        ),
    )


def problems(stdout: str) -> list[str]:
    """The PROBLEM lines of doctor's output."""
    return [line for line in stdout.splitlines() if line.startswith("PROBLEM")]


def test_doctor_healthy_with_bot_user_flags_admin_keys(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """On a set-up bucket doctor passes with the bot user's keys; admin keys are the one problem."""
    set_up_bucket()
    done = cli_here("doctor")
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = problems(done.stdout)
    assert "least privilege" in line and "imgbot setup --bot-user" in line
    assert "lifecycle" in done.stdout and "unwritable" in done.stdout
    bot_user(monkeypatch, s3_env, cli_here)
    done = cli_here("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBLEM" not in done.stdout and "may not list buckets" in done.stdout
    # The anonymous PUT doctor tried was refused, so it left nothing behind.
    keys = [o["Key"] for o in admin_s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and not [k for k in keys if "anonymous-write-check" in k]


def test_doctor_finds_anonymous_write_grant(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """A bucket policy letting anyone PUT under the prefix makes doctor fail, naming it."""
    set_up_bucket()
    bot_user(monkeypatch, s3_env, cli_here)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    admin_s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    done = cli_here("doctor")
    assert done.returncode == 1
    [line] = problems(done.stdout)
    assert "anyone can write under imagegen/ without a key" in line and "imgbot setup" in line


def test_bot_user_least_privilege(
    s3_env: dict[str, str],
    minio: MinioServer,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    cli_here: CliRunner,
) -> None:
    """The bot user may put/get under the prefix and nothing else; publish works with its keys."""
    set_up_bucket()
    first = bot_user(monkeypatch, s3_env, cli_here)
    access, secret = bot_user(monkeypatch, s3_env, cli_here)  # again: same user, fresh working keys
    assert access == first[0] and secret != first[1]
    with pytest.raises(ClientError):  # rotated: the first secret no longer works
        client(minio, *first).get_bucket_lifecycle_configuration(Bucket=bucket)
    s3 = client(minio, access, secret)
    s3.put_object(Bucket=bucket, Key="imagegen/ok.txt", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="imagegen/ok.txt")["Body"].read() == b"x"
    refused = [
        lambda: s3.put_object(Bucket=bucket, Key="elsewhere/x.txt", Body=b"x"),
        lambda: s3.delete_object(Bucket=bucket, Key="imagegen/ok.txt"),
        lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": []})),
        lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": []}
        ),
        s3.list_buckets,
        lambda: s3.list_objects_v2(Bucket=bucket),
    ]
    for call in refused:
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
    (tmp_path / "a.png").write_bytes(photo_png(64))
    done = cli_here("publish", str(tmp_path / "a.png"), "--json")
    assert done.returncode == 0, done.stderr


def test_bot_user_setup_refuses_while_another_runs(
    s3_env: dict[str, str],
    minio: MinioServer,
    admin_s3: Any,
    bucket: str,
    monkeypatch: Any,
    cli_here: CliRunner,
) -> None:
    """While one `setup --bot-user` holds the lease, another fails in one line, rotating nothing."""
    set_up_bucket()
    name = "bot-" + bucket[-10:]
    access, secret = bot_user(monkeypatch, s3_env, cli_here)
    lease = f".imgbot-setup/bot-user-{name}.lease"
    admin_s3.put_object(Bucket=bucket, Key=lease, Body=b"{}")  # as a run in progress leaves it
    monkeypatch.setenv("S3_ACCESS_KEY", s3_env["S3_ACCESS_KEY"])
    monkeypatch.setenv("S3_SECRET_KEY", s3_env["S3_SECRET_KEY"])
    done = cli_here("setup", "--bot-user", name)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"another `imgbot setup --bot-user {name}` is running" in done.stderr
    assert "S3_SECRET_KEY=" not in done.stdout
    client(minio, access, secret).get_bucket_lifecycle_configuration(Bucket=bucket)  # still works
    admin_s3.delete_object(Bucket=bucket, Key=lease)
    again = cli_here("setup", "--bot-user", name)
    assert again.returncode == 0, again.stderr
    assert admin_s3.list_objects_v2(Bucket=bucket, Prefix=".imgbot-setup/")["KeyCount"] == 0


def test_setup_as_bot_user_says_it_needs_admin_keys(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """Running setup with the bot user's keys fails in one line that asks for admin keys."""
    set_up_bucket()
    bot_user(monkeypatch, s3_env, cli_here)
    done = cli_here("setup")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "AccessDenied" in done.stderr and "needs admin keys in S3_ACCESS_KEY" in done.stderr


def test_doctor_wrong_secret(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A wrong secret is named as a credentials problem, without a traceback."""
    set_up_bucket()
    monkeypatch.setenv("S3_SECRET_KEY", "wrong-secret-value")
    done = cli_here("doctor")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "S3_ACCESS_KEY and S3_SECRET_KEY" in done.stdout
    assert "wrong-secret-value" not in done.stdout + done.stderr


def test_doctor_unreachable_endpoint(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """An endpoint nothing listens on is named with its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("S3_ENDPOINT", url)
    monkeypatch.setenv("S3_TIMEOUT_SECONDS", "2")
    done = cli_here("doctor")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{url} unreachable" in done.stdout


def test_doctor_public_bucket(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """A bucket made publicly readable and listable by a bucket policy is found."""
    set_up_bucket()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }
    admin_s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    done = cli_here("doctor")
    assert done.returncode == 1
    assert "anyone can read images" in done.stdout
    assert "anyone can list the bucket's keys" in done.stdout


def test_doctor_missing_lifecycle(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """A bucket without our lifecycle rule is found and `imgbot setup` is suggested."""
    set_up_bucket()
    admin_s3.delete_bucket_lifecycle(Bucket=bucket)
    done = cli_here("doctor")
    assert done.returncode == 1
    assert "no rule expires imagegen/" in done.stdout and "run imgbot setup" in done.stdout


def test_doctor_file_public_endpoint(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """The old manual's file:// mistake is a configuration error: exit 2."""
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT", "file:///root/project-wb/dingtalk_bot/imagegen")
    done = cli_here("doctor")
    assert done.returncode == 2 and "S3_PUBLIC_ENDPOINT" in done.stderr


def test_doctor_wrong_public_host(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A public endpoint that does not reach the storage makes the link check fail."""
    set_up_bucket()
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    done = cli_here("doctor")
    assert done.returncode == 1 and "a fresh link does not load" in done.stdout


@pytest.mark.parametrize("secret_ok", [True, False])
async def test_doctor_dingtalk_checks(
    s3_env: dict[str, str],
    simulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    secret_ok: bool,
    cli_here: CliRunner,
) -> None:
    """With DingTalk keys, doctor checks them and flags a loopback public endpoint."""
    import asyncio

    set_up_bucket()
    monkeypatch.setenv("DINGTALK_OPENAPI_ENDPOINT", simulator.base_url)
    monkeypatch.setenv("DINGTALK_CLIENT_ID", simulator.client_id)
    monkeypatch.setenv(
        "DINGTALK_CLIENT_SECRET", simulator.client_secret if secret_ok else "wrong-ding-secret"
    )
    done = await asyncio.to_thread(cli_here, "doctor")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "private or loopback address" in done.stdout
    if secret_ok:
        assert "credentials accepted (access token issued)" in done.stdout
    else:
        assert "check DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET" in done.stdout
        assert "wrong-ding-secret" not in done.stdout + done.stderr


def test_public_address_needs_https_with_dingtalk() -> None:
    """With DingTalk keys, a public but plain-http origin is a problem; https is fine."""
    from imgbot.config.settings import load_settings
    from imgbot.doctor.outside import public_address

    common = {
        "s3_access_key": "a",
        "s3_secret_key": "b",
        "dingtalk_client_id": "id",
        "dingtalk_client_secret": "secret",
    }
    plain = public_address(load_settings(s3_public_endpoint="http://119.28.50.67:9000", **common))
    assert not plain.ok and "https" in plain.fix
    secure = public_address(load_settings(s3_public_endpoint="https://119.28.50.67", **common))
    assert secure.ok
