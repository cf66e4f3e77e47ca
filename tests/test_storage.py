"""The storage adapters against a real MinIO: the bot's data path and the admin lease."""

from __future__ import annotations

from typing import Any

import pytest

from imgbot.bucket.admin import BucketAdmin, LeaseHeld
from imgbot.config.settings import load_settings
from imgbot.errors import StorageError
from imgbot.storage_s3 import S3Storage

pytestmark = pytest.mark.minio


@pytest.fixture
def made_bucket(s3_env: dict[str, str], admin_s3: Any, bucket: str) -> str:
    """This test's bucket, created."""
    admin_s3.create_bucket(Bucket=bucket)
    return bucket


def storage(**overrides: str) -> S3Storage:
    return S3Storage.from_settings(load_settings(**overrides))  # type: ignore[arg-type]


def test_get_reads_back_and_refuses_what_is_too_large(made_bucket: str) -> None:
    """get returns what put stored; beyond max_bytes it is TooLarge; a missing key is NoSuchKey."""
    data = storage()
    data.put("imagegen/a.bin", b"x" * 100, content_type="image/png", cache_control="no-store")
    assert data.get("imagegen/a.bin", max_bytes=100) == b"x" * 100
    with pytest.raises(StorageError) as large:
        data.get("imagegen/a.bin", max_bytes=99)
    assert large.value.code == "TooLarge" and "99 bytes" in str(large.value)
    with pytest.raises(StorageError) as missing:
        data.get("imagegen/none.bin", max_bytes=100)
    assert missing.value.code == "NoSuchKey"


def test_probe_passes_without_rules_and_names_wrong_keys(made_bucket: str) -> None:
    """probe is healthy on a bucket with no lifecycle yet; wrong keys raise naming the settings."""
    storage().probe()
    with pytest.raises(StorageError) as wrong:
        storage(s3_secret_key="wrong-secret-value").probe()
    assert wrong.value.code == "SignatureDoesNotMatch"
    assert "S3_ACCESS_KEY and S3_SECRET_KEY" in str(wrong.value)
    assert "wrong-secret-value" not in str(wrong.value)


def test_lease_is_exclusive_released_and_taken_over_when_stale(
    made_bucket: str, admin_s3: Any
) -> None:
    """A held lease refuses a second taker, is deleted after its block, and is taken over once
    it is as old as the taker's limit."""
    admin = BucketAdmin.from_settings(load_settings())
    with (
        admin.lease("locks/a", seconds=60),
        pytest.raises(LeaseHeld),
        admin.lease("locks/a", seconds=60),
    ):
        pytest.fail("a second holder got in")
    assert admin_s3.list_objects_v2(Bucket=made_bucket, Prefix="locks/")["KeyCount"] == 0
    admin_s3.put_object(Bucket=made_bucket, Key="locks/b", Body=b"{}")  # its holder died
    with pytest.raises(LeaseHeld), admin.lease("locks/b", seconds=60):
        pytest.fail("a lease younger than the limit was taken over")
    with admin.lease("locks/b", seconds=0):  # at least 0 s old, by the server's clock: stale
        assert admin_s3.get_object(Bucket=made_bucket, Key="locks/b")["Body"].read() != b"{}"
    assert admin_s3.list_objects_v2(Bucket=made_bucket, Prefix="locks/")["KeyCount"] == 0


def test_creating_an_owned_bucket_again_is_done(s3_env: dict[str, str]) -> None:
    """A create that finds the bucket already ours (a retried or raced create) is not an error."""
    admin = BucketAdmin.from_settings(load_settings())
    admin.create("us-east-1")
    admin.create("us-east-1")
    assert admin.exists()
