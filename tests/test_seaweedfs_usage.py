"""Storage usage from a server's Prometheus metrics (S3_USAGE_METRICS_URL): a real SeaweedFS
(``weed mini`` with its metrics port) counts the bucket's objects; the bot's metrics get them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from imgbot.bucket.usage import UsageUnavailable, read_usage
from imgbot.config.settings import load_settings
from imgbot.service.metrics import Metrics
from imgbot.service.usage import UsageRefresh
from tests.conftest import s3_client
from tests.polling import poll_until
from tests.processes import free_port
from tests.seaweedfs_server import SUITE_FLAGS, SeaweedServer, weed_binary

pytestmark = [pytest.mark.seaweedfs, pytest.mark.slow]


@pytest.fixture(scope="module")
def weed_with_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real SeaweedFS whose Prometheus metrics answer on a free loopback port."""
    port = free_port()
    server = SeaweedServer(
        weed_binary(),
        tmp_path_factory.mktemp("weed-metrics") / "data",
        flags=(*SUITE_FLAGS, f"-metricsPort={port}", "-metricsIp=127.0.0.1"),
    )
    server.start()
    server.ports["metrics"] = port
    yield server
    server.stop()


@pytest.fixture
def weed_env(weed_with_metrics: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing imgbot at that SeaweedFS, its metrics and a fresh bucket."""
    env = {
        "S3_PROVIDER": "s3",
        "S3_ENDPOINT": weed_with_metrics.endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY": weed_with_metrics.access_key,
        "S3_SECRET_KEY": weed_with_metrics.secret_key,
        "S3_BUCKET": f"t-{uuid.uuid4().hex[:20]}",
        "S3_USAGE_METRICS_URL": f"http://127.0.0.1:{weed_with_metrics.ports['metrics']}/metrics",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_seaweedfs_bucket_object_count_reaches_the_metrics(
    weed_env: dict[str, str], weed_with_metrics: SeaweedServer
) -> None:
    """SeaweedFS's SeaweedFS_s3_bucket_object_count for the bucket becomes
    imgbot_storage_bucket_objects (whole bucket: objects outside S3_PREFIX count too); no figure
    for the prefix is made up."""
    bucket = weed_env["S3_BUCKET"]
    client = s3_client(
        weed_with_metrics.endpoint, weed_with_metrics.access_key, weed_with_metrics.secret_key
    )
    client.create_bucket(Bucket=bucket)
    for index in range(3):
        client.put_object(Bucket=bucket, Key=f"imagegen/{index}.png", Body=b"x" * 1000)
    client.put_object(Bucket=bucket, Key="elsewhere/y.bin", Body=b"y" * 700)
    settings = load_settings()

    def counted() -> bool:
        try:
            return read_usage(settings).bucket_objects == 4
        except UsageUnavailable:  # SeaweedFS publishes bucket figures about a minute late
            return False

    poll_until(counted, timeout=240, what="SeaweedFS counted the bucket's objects")
    metrics = Metrics()
    usage = asyncio.run(UsageRefresh.from_settings(settings, metrics.storage_usage).refresh())
    assert usage is not None and usage.prefix_bytes is None and usage.bucket_bytes is not None
    sample = metrics.registry.get_sample_value
    assert sample("imgbot_storage_usage_available") == 1
    assert sample("imgbot_storage_bucket_objects", {"bucket": bucket}) == 4
    assert sample("imgbot_storage_prefix_bytes", {"bucket": bucket, "prefix": "imagegen/"}) is None


def test_metrics_without_the_bucket_say_so(weed_env: dict[str, str]) -> None:
    """A metrics page that has no figures for the bucket (yet) is "unavailable", naming why."""
    with pytest.raises(UsageUnavailable) as caught:
        read_usage(load_settings(s3_bucket="t-never-made-here"))
    assert "t-never-made-here" in str(caught.value)


def test_bucket_objects_help_says_prefix_counts_are_unavailable() -> None:
    """The object count's help says it is the whole bucket's: no server gives one per prefix."""
    [family] = [
        f for f in Metrics().registry.collect() if f.name == "imgbot_storage_bucket_objects"
    ]
    assert "not only under S3_PREFIX" in family.documentation
    assert "unavailable" in family.documentation
