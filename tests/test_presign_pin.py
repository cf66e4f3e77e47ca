"""imgbot's presigner signs exactly as botocore's public API does, at the instant its clock gives.

``Presigner`` drives botocore's SigV4 query signer itself (``presign._QueryAuthAt``) so that a link
can be signed at a given time (the clock seam doctor and the tests use). These checks pin that
use of botocore's internals to ``generate_presigned_url``: a botocore release that changes them
fails here instead of making links storage refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from imgbot.presign import Presigner

KEY = "imagegen/2026/12/06/abcdefghijklmnopqrstuvwxyz.preview.jpg"


@pytest.mark.parametrize(
    ("endpoint", "bucket", "region", "style", "ttl"),
    [
        ("http://127.0.0.1:9000", "imgbot", "us-east-1", "path", 604_800),
        (
            "https://cos.ap-guangzhou.myqcloud.com",
            "imgbot-1250000000",
            "ap-guangzhou",
            "virtual",
            60,
        ),
        ("https://img.example.com:8443", "my.bucket", "eu-west-1", "path", 3_600),
    ],
)
def test_link_equals_generate_presigned_url_at_the_same_instant(
    endpoint: str, bucket: str, region: str, style: str, ttl: int
) -> None:
    """For the instant botocore's client signed at, the presigner makes the very same URL."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="AKIAPIN",
        aws_secret_access_key="pin-secret",
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )
    expected = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=ttl
    )
    stamp = parse_qs(urlsplit(expected).query)["X-Amz-Date"][0]
    signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    presigner = Presigner(
        public_endpoint=endpoint,
        bucket=bucket,
        region=region,
        access_key="AKIAPIN",
        secret_key="pin-secret",
        addressing_style=style,
        ttl=ttl,
    ).with_clock(lambda: signed_at)
    assert presigner.link(KEY).url == expected
