"""Storage usage in the metrics: MinIO's own figures for the bucket and S3_PREFIX, read on an
interval away from requests; unavailable (and said once) where the keys or the server give none."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import MinioAdmin
from minio.credentials.providers import StaticProvider

from imgbot.bucket.usage import Usage, UsageUnavailable, read_usage, usage_from_account_info
from imgbot.config.settings import load_settings
from imgbot.errors import StorageError
from imgbot.service.metrics import Metrics
from imgbot.service.usage import UsageRefresh
from tests.conftest import admin_client, point_at_s3, set_up_bucket
from tests.minio_server import MinioServer, minio_binary
from tests.polling import poll_until
from tests.test_doctor import bot_user

pytestmark = pytest.mark.minio


@pytest.fixture
def own_minio(tmp_path: Path) -> Iterator[MinioServer]:
    """A MinIO of this test's own on a free port, stopped after it: on a server that has seen
    many buckets MinIO's scanner may report a bucket's prefix figures cycles late. Its scanner
    runs at MinIO's "fastest" speed (a cycle a second instead of a minute)."""
    server = MinioServer(
        minio_binary(), tmp_path / "minio" / "data", settings={"MINIO_SCANNER_SPEED": "fastest"}
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_minio_usage_counts_bucket_and_prefix(
    own_minio: MinioServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With keys MinIO shows the bucket to, the metrics get the bucket's bytes and objects and
    the bytes under S3_PREFIX (not those of another prefix), as MinIO's scanner counts them; a
    user allowed only s3:GetBucketLocation, named in S3_USAGE_*, reads the same figures."""
    minio = own_minio
    point_at_s3(monkeypatch, minio.endpoint, (minio.access_key, minio.secret_key), bucket)
    set_up_bucket()
    admin_s3 = admin_client(minio)
    for index, size in enumerate((1000, 2500)):
        admin_s3.put_object(Bucket=bucket, Key=f"imagegen/2026/01/0{index}/x.png", Body=b"x" * size)
    admin_s3.put_object(Bucket=bucket, Key="elsewhere/y.bin", Body=b"y" * 700)
    settings = load_settings()
    # MinIO's data scanner counts new objects on its next cycle.
    # Its figures for the bucket and for each prefix may come from different cycles: wait for both.
    expected = Usage(bucket, "imagegen/", 3500, 4200, 3)
    poll_until(
        lambda: read_usage(settings) == expected,
        timeout=240,
        what="MinIO counted the objects and the bytes under the prefix",
    )
    metrics = Metrics()
    refresh = UsageRefresh.from_settings(settings, metrics.storage_usage)
    usage = asyncio.run(refresh.refresh())
    assert usage == expected
    sample = metrics.registry.get_sample_value
    assert sample("imgbot_storage_usage_available") == 1
    assert sample("imgbot_storage_prefix_bytes", {"bucket": bucket, "prefix": "imagegen/"}) == 3500
    assert sample("imgbot_storage_bucket_bytes", {"bucket": bucket}) == 4200
    assert sample("imgbot_storage_bucket_objects", {"bucket": bucket}) == 3
    name, secret = locate_only_user(minio, bucket)
    usage_keys = {"s3_usage_access_key": name, "s3_usage_secret_key": secret}
    assert read_usage(load_settings(**usage_keys)) == usage
    # Without S3_USAGE_* the bot's own keys are asked: here the same user's, so the same figures.
    assert read_usage(load_settings(s3_access_key=name, s3_secret_key=secret)) == usage


def locate_only_user(minio: MinioServer, bucket: str) -> tuple[str, str]:
    """A MinIO user allowed s3:GetBucketLocation on ``bucket`` and nothing else."""
    admin = MinioAdmin(
        endpoint=minio.endpoint.removeprefix("http://"),
        secure=False,
        credentials=StaticProvider(minio.access_key, minio.secret_key),
    )
    name, secret = f"usage-{bucket[-10:]}", f"usage-secret-{bucket[-10:]}"
    admin.user_add(name, secret)
    statement = {
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation"],
        "Resource": [f"arn:aws:s3:::{bucket}"],
    }
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [statement]})
    admin.attach_policy([name], user=name)
    return name, secret


def test_bot_user_sees_no_usage_and_it_is_said_once(
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MinIO shows the least-privilege bot user no bucket usage: the metric says unavailable
    (no byte figures at all) and the reason is logged once over several refreshes, as an info
    line (nobody asked for the figures)."""
    set_up_bucket()
    bot_user(monkeypatch, s3_env)
    settings = load_settings()
    metrics = Metrics()
    refresh = UsageRefresh.from_settings(settings, metrics.storage_usage)
    with caplog.at_level(logging.INFO, logger="imgbot.service.usage"):
        for _ in range(3):
            assert asyncio.run(refresh.refresh()) is None
    [record] = caplog.records
    said = record.getMessage()
    assert record.levelno == logging.INFO
    assert "least-privilege bot user" in said and s3_env["S3_SECRET_KEY"] not in said
    assert metrics.registry.get_sample_value("imgbot_storage_usage_available") == 0
    text = "\n".join(s.name for m in metrics.registry.collect() for s in m.samples)
    assert "imgbot_storage_prefix_bytes" not in text


@pytest.mark.parametrize("asked", [True, False])
def test_losing_figures_is_a_warning_when_asked_for_or_once_readable(
    caplog: pytest.LogCaptureFixture, asked: bool
) -> None:
    """A failure is a warning when the operator asked for the figures; when not, an info line
    until they were once readable, after which losing them is a warning."""
    answers: list[Usage | StorageError] = [StorageError("no figures"), Usage("b", "p/", 1, 2, 3)]
    answers.append(StorageError("gone again"))

    def read() -> Usage:
        answer = answers.pop(0)
        if isinstance(answer, StorageError):
            raise answer
        return answer

    refresh = UsageRefresh(read, lambda usage: None, every=60, asked=asked)
    with caplog.at_level(logging.INFO, logger="imgbot.service.usage"):
        for _ in range(3):
            asyncio.run(refresh.refresh())
    levels = [(r.levelno, r.getMessage().split(" (")[0]) for r in caplog.records]
    first = logging.WARNING if asked else logging.INFO
    assert levels == [
        (first, "no figures"),
        (logging.INFO, "storage usage readable again"),
        (logging.WARNING, "gone again"),
    ]


def test_a_provider_without_usage_figures_is_unavailable(s3_env: dict[str, str]) -> None:
    """S3_PROVIDER=s3 names no usage source: unavailable, saying which provider."""
    settings = load_settings(s3_provider="s3", s3_region="us-east-1")
    with pytest.raises(UsageUnavailable, match="S3_PROVIDER=s3"):
        read_usage(settings)


@pytest.mark.parametrize(
    ("prefix", "expected"), [("imagegen/", 30), ("a/b/", None), ("", 99), ("none/", 0)]
)
def test_prefix_bytes_only_for_top_level_prefixes(prefix: str, expected: int | None) -> None:
    """MinIO counts bytes per top-level prefix only: a nested prefix has no figure, no prefix
    means the whole bucket, a prefix it did not list holds nothing."""
    info = {
        "Buckets": [
            {"name": "b", "size": 99, "objects": 4, "prefixUsage": {"imagegen": 30, "a": 60}}
        ]
    }
    assert usage_from_account_info(info, "b", prefix).prefix_bytes == expected


def test_interval_setting_is_validated(s3_env: dict[str, str]) -> None:
    """STORAGE_USAGE_INTERVAL_SECONDS is 0 (off) or at least 10."""
    from imgbot.errors import ConfigError

    assert load_settings(storage_usage_interval_seconds=0).storage_usage_interval_seconds == 0
    with pytest.raises(ConfigError, match="STORAGE_USAGE_INTERVAL_SECONDS"):
        load_settings(storage_usage_interval_seconds=1)
    with pytest.raises(ConfigError, match="S3_USAGE_ACCESS_KEY and S3_USAGE_SECRET_KEY"):
        load_settings(s3_usage_access_key="reader")
