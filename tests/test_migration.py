"""Moving a MinIO bucket to SeaweedFS as infra/README.md says: only a copy that keeps user metadata
(x-amz-meta-*) keeps pictures editable, since edits check the conversation stored with them."""

from __future__ import annotations

import os
import subprocess

import pytest

from imgbot.errors import StorageError
from imgbot.objects.metadata import owner_metadata
from imgbot.storage_s3 import S3Storage
from tests.conftest import s3_client
from tests.minio_server import MinioServer
from tests.processes import ROOT
from tests.seaweedfs_server import SeaweedServer

pytestmark = [pytest.mark.minio, pytest.mark.seaweedfs]
KEY = "imagegen/2026/01/01/picture.png"


def remote_env(minio: MinioServer, weed: SeaweedServer) -> dict[str, str]:
    """rclone remotes ``minio`` and ``seaweedfs`` from the environment (no config file)."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    for name, provider, server in (("MINIO", "Minio", minio), ("SEAWEEDFS", "SeaweedFS", weed)):
        env |= {
            f"RCLONE_CONFIG_{name}_TYPE": "s3",
            f"RCLONE_CONFIG_{name}_PROVIDER": provider,
            f"RCLONE_CONFIG_{name}_ENDPOINT": server.endpoint,
            f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
            f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
        }
    return env


def test_rclone_metadata_keeps_pictures_ours_and_plain_copy_does_not(
    minio: MinioServer, seaweedfs: SeaweedServer, bucket: str
) -> None:
    """`rclone copy --metadata` brings a picture's conversation along (an edit may read it on
    SeaweedFS); a copy without it leaves the picture "not ours"; infra/README.md says both."""
    source = s3_client(minio.endpoint, minio.access_key, minio.secret_key)
    source.create_bucket(Bucket=bucket)
    owner = owner_metadata("cid-group-1")
    source.put_object(Bucket=bucket, Key=KEY, Body=b"png", ContentType="image/png", Metadata=owner)
    target = s3_client(seaweedfs.endpoint, seaweedfs.access_key, seaweedfs.secret_key)
    env = remote_env(minio, seaweedfs)
    for name, flags in (("kept", ["--metadata"]), ("plain", [])):
        target.create_bucket(Bucket=f"{bucket}-{name}")
        subprocess.run(
            [
                "rclone",
                "copy",
                *flags,
                f"minio:{bucket}/imagegen",
                f"seaweedfs:{bucket}-{name}/imagegen",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    kept = S3Storage(target, f"{bucket}-kept").get(KEY, 1000, require_metadata=owner)
    assert kept == b"png"
    with pytest.raises(StorageError) as caught:
        S3Storage(target, f"{bucket}-plain").get(KEY, 1000, require_metadata=owner)
    assert caught.value.code == "MetadataMismatch"
    guide = (ROOT / "infra/README.md").read_text(encoding="utf-8")
    zh, en = (
        guide.split("把现有 MinIO 桶搬到 SeaweedFS", 1)[1],
        guide.split("Moving an existing", 1)[1],
    )
    assert "x-amz-meta-" in zh.split("验证方法", 1)[0] and "不是这个会话的" in zh
    assert "x-amz-meta-" in en.split("How it was tried", 1)[0] and "not ours" in en
