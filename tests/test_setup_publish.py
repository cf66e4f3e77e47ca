"""The core against a real MinIO: setup, publish, draw and the links they give."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from tests.conftest import CliRunner
from tests.images import decompression_bomb, jpeg_with_gps, photo_png

pytestmark = pytest.mark.minio


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain GET with no credentials; returns status, headers and body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def publish_json(cli_here: CliRunner, path: str) -> dict[str, Any]:
    done = cli_here("publish", path, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_setup_twice_sets_lifecycle_and_keeps_foreign_rule(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """setup is idempotent, writes a 7-day rule on imagegen/ and keeps rules others added."""
    first = cli_here("setup")
    assert first.returncode == 0, first.stderr
    foreign = {
        "ID": "logs-30d",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Expiration": {"Days": 30},
    }
    rules = admin_s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules] == [
        ("imagegen/", 7, "Enabled")
    ]
    admin_s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*rules, foreign]}
    )
    second = cli_here("setup")
    assert second.returncode == 0, second.stderr
    assert "already expires" in second.stdout  # nothing to write: our rule is as configured
    monkeypatch.setenv("IMAGE_RETENTION_DAYS", "5")  # now setup must read, merge and write back
    third = cli_here("setup")
    assert third.returncode == 0, third.stderr
    assert "1 other rule(s) kept" in third.stdout
    rules = admin_s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    by_prefix = {r["Filter"]["Prefix"]: r for r in rules}
    assert by_prefix["imagegen/"]["Expiration"]["Days"] == 5
    assert by_prefix["imagegen/"]["Status"] == "Enabled"
    assert by_prefix["logs/"]["Expiration"]["Days"] == 30
    assert len(rules) == 2


def test_setup_follows_retention_days(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """Changing IMAGE_RETENTION_DAYS and re-running setup updates our rule in place."""
    assert cli_here("setup").returncode == 0
    monkeypatch.setenv("IMAGE_RETENTION_DAYS", "3")
    assert cli_here("setup").returncode == 0
    rules = admin_s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [3]


@pytest.mark.parametrize(
    ("principal", "actions"),
    [
        ({"AWS": ["*"]}, ["s3:GetObject"]),
        ("*", ["s3:Get*"]),
        ({"AWS": ["arn:aws:iam::1:root", "*"]}, "s3:*"),
    ],
)
def test_setup_removes_public_read_policy(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    principal: Any,
    actions: Any,
    cli_here: CliRunner,
) -> None:
    """Anonymous read or list grants (wildcards too) are removed by setup (presigned mode)."""
    assert cli_here("setup").returncode == 0
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "oops",
                "Effect": "Allow",
                "Principal": principal,
                "Action": actions,
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
            {
                "Sid": "listing",
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }
    admin_s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    admin_s3.put_object(Bucket=bucket, Key="imagegen/x.txt", Body=b"x")
    assert fetch(f"{s3_env['S3_ENDPOINT']}/{bucket}/imagegen/x.txt")[0] == 200
    assert fetch(f"{s3_env['S3_ENDPOINT']}/{bucket}/?list-type=2")[0] == 200
    done = cli_here("setup")
    assert done.returncode == 0
    assert "oops" in done.stdout and "listing" in done.stdout
    assert fetch(f"{s3_env['S3_ENDPOINT']}/{bucket}/imagegen/x.txt")[0] == 403
    assert fetch(f"{s3_env['S3_ENDPOINT']}/{bucket}/?list-type=2")[0] == 403


def test_published_links_load_without_credentials(
    s3_env: dict[str, str], tmp_path: Any, admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """Preview and original load by plain GET, right types, same pixels, preview <= 15%."""
    assert cli_here("setup").returncode == 0
    source = photo_png()
    (tmp_path / "photo.png").write_bytes(source)
    result = publish_json(cli_here, str(tmp_path / "photo.png"))
    assert set(result) >= {"key", "preview_key", "url", "original_url", "expires_at", "markdown"}
    status, headers, original = fetch(result["original_url"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline")
    assert headers["Cache-Control"].startswith("private, max-age=")
    assert Image.open(io.BytesIO(original)).tobytes() == Image.open(io.BytesIO(source)).tobytes()
    status, headers, preview = fetch(result["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(preview)).size) <= 1280
    assert len(preview) <= 0.15 * len(original)
    head = admin_s3.head_object(Bucket=bucket, Key=result["key"])
    expiration = head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    assert 'rule-id="imgbot-expire-images"' in expiration
    assert result["url"] in result["markdown"] and result["original_url"] in result["markdown"]


def test_keys_follow_layout(s3_env: dict[str, str], tmp_path: Any, cli_here: CliRunner) -> None:
    """Keys are prefix/yyyy/mm/dd/token.ext and token.preview.jpg, token >= 128 bits."""
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    parts = result["key"].split("/")
    assert parts[0] == "imagegen" and len(parts) == 5 and parts[4].endswith(".png")
    token = parts[4].removesuffix(".png")
    assert len(token) * 5 >= 128
    assert result["preview_key"] == result["key"].removesuffix(".png") + ".preview.jpg"


def test_jpeg_metadata_removed_pixels_kept(
    s3_env: dict[str, str], tmp_path: Any, cli_here: CliRunner
) -> None:
    """EXIF/GPS and comments are removed from the stored original; decoded pixels are identical."""
    assert cli_here("setup").returncode == 0
    source = jpeg_with_gps()
    assert b"TestCamera" in source and b"secret place" in source
    (tmp_path / "gps.jpg").write_bytes(source)
    result = publish_json(cli_here, str(tmp_path / "gps.jpg"))
    _, headers, stored = fetch(result["original_url"])
    assert headers["Content-Type"] == "image/jpeg"
    assert b"TestCamera" not in stored and b"secret place" not in stored and b"Exif" not in stored
    stored_image = Image.open(io.BytesIO(stored))
    assert not stored_image.getexif()
    assert stored_image.tobytes() == Image.open(io.BytesIO(source)).tobytes()


def test_links_refused_when_unsigned_tampered_rehosted_or_expired(
    s3_env: dict[str, str],
    tmp_path: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """Unsigned, changed-signature, other-host and expired links all get 403."""
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    port = s3_env["S3_ENDPOINT"].rsplit(":", 1)[1]
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT", f"http://localhost:{port}")
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    url = result["url"]
    assert url.startswith(f"http://localhost:{port}/")
    assert fetch(url)[0] == 200
    assert fetch(f"{s3_env['S3_ENDPOINT']}/{bucket}/{result['preview_key']}")[0] == 403
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert fetch(url.replace(signature, flipped))[0] == 403
    assert fetch(url.replace("http://localhost:", "http://127.0.0.1:"))[0] == 403
    # A link signed ten seconds ago for one second has expired: the presigner's clock seam.
    from imgbot.config.settings import load_settings
    from imgbot.presign import Presigner

    past = datetime.now(UTC) - timedelta(seconds=10)
    signer = Presigner.from_settings(load_settings()).with_clock(lambda: past)
    expired = signer.link(result["preview_key"], ttl=1)
    assert fetch(expired.url)[0] == 403
    assert fetch(signer.link(result["preview_key"], ttl=60).url)[0] == 200  # same path, alive


def test_links_signed_for_public_endpoint_with_sigv4(
    s3_env: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """Links use S3_PUBLIC_ENDPOINT's host and AWS4-HMAC-SHA256 (never SigV2)."""
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT", "https://img.example.com")
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    for url in (result["url"], result["original_url"]):
        assert url.startswith("https://img.example.com/")
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        assert "AWSAccessKeyId" not in url and s3_env["S3_ENDPOINT"] not in url


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"hello, this is not an image\n"),
        ("bomb.png", decompression_bomb()),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
    ],
)
def test_publish_refuses_bad_input_and_stores_nothing(
    s3_env: dict[str, str],
    tmp_path: Any,
    admin_s3: Any,
    bucket: str,
    name: str,
    content: bytes,
    cli_here: CliRunner,
) -> None:
    """Non-images, bombs and other formats exit 1 with one line, no traceback, nothing stored."""
    assert cli_here("setup").returncode == 0
    (tmp_path / name).write_bytes(content)
    done = cli_here("publish", str(tmp_path / name))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert admin_s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_draw_placeholder_json(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """draw (placeholder) stores an IMAGE_SIZE picture and reports prompt and generator."""
    monkeypatch.setenv("IMAGE_SIZE", "512x384")
    assert cli_here("setup").returncode == 0
    done = cli_here("draw", "一只可爱的小猫", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["prompt"] == "一只可爱的小猫" and result["generator"] == "placeholder"
    status, _, body = fetch(result["original_url"])
    assert status == 200 and Image.open(io.BytesIO(body)).size == (512, 384)
    assert "一只可爱的小猫" in result["markdown"]


def test_storage_unreachable_is_one_line(
    s3_env: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """An endpoint nothing listens on gives exit 1 and one line naming the failure."""
    from tests.processes import free_port

    monkeypatch.setenv("S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("S3_TIMEOUT_SECONDS", "2")
    (tmp_path / "a.png").write_bytes(photo_png(64))
    done = cli_here("publish", str(tmp_path / "a.png"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "EndpointConnectionError" in done.stderr


def test_public_base_url_mode_and_back(
    s3_env: dict[str, str],
    tmp_path: Any,
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """PUBLIC_BASE_URL opens only the prefix for reading; unsetting it makes the bucket private."""
    origin = f"{s3_env['S3_ENDPOINT']}/{bucket}"
    monkeypatch.setenv("PUBLIC_BASE_URL", origin)
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    assert result["url"] == f"{origin}/{result['preview_key']}"
    assert result["expires_at"] is None
    status, headers, _ = fetch(result["url"])
    assert status == 200
    assert headers["Cache-Control"].startswith("public, max-age=")
    assert "immutable" in headers["Cache-Control"]
    admin_s3.put_object(Bucket=bucket, Key="private/x.txt", Body=b"x")
    assert fetch(f"{origin}/private/x.txt")[0] == 403
    monkeypatch.delenv("PUBLIC_BASE_URL")
    assert cli_here("setup").returncode == 0
    assert fetch(result["url"])[0] == 403


def anonymous_put(url: str) -> int:
    """An unsigned PUT of a small HTML page, as anyone on the network could send it."""
    request = urllib.request.Request(
        url, data=b"<h1>hi</h1>", method="PUT", headers={"Content-Type": "text/html"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def put_policy(admin_s3: Any, bucket: str, *statements: dict[str, Any]) -> None:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    admin_s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))


def test_setup_removes_anonymous_write_grant(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """An anonymous PutObject grant on the bucket is removed and reported; unsigned PUTs fail."""
    assert cli_here("setup").returncode == 0
    put_policy(
        admin_s3,
        bucket,
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        },
    )
    target = f"{s3_env['S3_ENDPOINT']}/{bucket}/imagegen/x.html"
    assert anonymous_put(target) == 200  # the hole is real before setup
    done = cli_here("setup")
    assert done.returncode == 0, done.stderr
    assert "removed anonymous statement(s) s3:PutObject on" in done.stdout
    assert anonymous_put(target.replace("x.html", "y.html")) == 403
    with pytest.raises(admin_s3.exceptions.ClientError):
        admin_s3.get_bucket_policy(Bucket=bucket)  # nothing else was in it: policy deleted


@pytest.mark.parametrize(
    ("principal", "action", "resource"),
    [
        ({"AWS": "*"}, "s3:*", "arn:aws:s3:::{bucket}/imagegen/*"),
        ({"AWS": ["*"]}, "*", "arn:aws:s3:::t-*"),
        ("*", "s3:Put*", "arn:aws:s3:::{bucket}/image*"),
        ("*", ["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::{bucket}/*/x.html"),
    ],
)
def test_setup_removes_every_anonymous_grant_spelling(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    principal: Any,
    action: Any,
    resource: str,
    cli_here: CliRunner,
) -> None:
    """Wildcard actions, principals and resources that reach our prefix are all removed."""
    assert cli_here("setup").returncode == 0
    statement = {"Effect": "Allow", "Principal": principal, "Action": action}
    put_policy(admin_s3, bucket, {**statement, "Resource": [resource.format(bucket=bucket)]})
    target = f"{s3_env['S3_ENDPOINT']}/{bucket}/imagegen/x.html"
    assert anonymous_put(target) == 200
    done = cli_here("setup")
    assert done.returncode == 0 and "removed anonymous statement(s)" in done.stdout
    assert anonymous_put(target) == 403


def test_setup_leaves_other_prefixes_grants(
    s3_env: dict[str, str], admin_s3: Any, bucket: str, cli_here: CliRunner
) -> None:
    """Another team's public/ grant stays (and is named); a mixed grant keeps only their part."""
    assert cli_here("setup").returncode == 0
    theirs = {
        "Sid": "TeamPublic",
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/public/*"],
    }
    mixed = {
        **theirs,
        "Sid": "Mixed",
        "Resource": [f"arn:aws:s3:::{bucket}/shared/*", f"arn:aws:s3:::{bucket}/imagegen/*"],
    }
    put_policy(admin_s3, bucket, theirs, mixed)
    for key in ("public/a.txt", "shared/a.txt", "imagegen/a.txt"):
        admin_s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    origin = f"{s3_env['S3_ENDPOINT']}/{bucket}"
    done = cli_here("setup")
    assert done.returncode == 0, done.stderr
    assert "left anonymous statement(s) TeamPublic alone" in done.stdout
    assert "Mixed no longer cover imagegen/" in done.stdout
    assert fetch(f"{origin}/public/a.txt")[0] == 200
    assert fetch(f"{origin}/shared/a.txt")[0] == 200
    assert fetch(f"{origin}/imagegen/a.txt")[0] == 403
    again = cli_here("setup")
    assert "imagegen/ in bucket" in again.stdout and "is private" in again.stdout


def test_public_base_url_keeps_only_our_read_statement(
    s3_env: dict[str, str],
    admin_s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """In PUBLIC_BASE_URL mode an extra anonymous PUT grant on the prefix still goes."""
    monkeypatch.setenv("PUBLIC_BASE_URL", f"{s3_env['S3_ENDPOINT']}/{bucket}")
    assert cli_here("setup").returncode == 0
    policy = json.loads(admin_s3.get_bucket_policy(Bucket=bucket)["Policy"])
    ours = policy["Statement"]
    write = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/imagegen/*"],
    }
    put_policy(admin_s3, bucket, *ours, write)
    done = cli_here("setup")
    assert done.returncode == 0 and "removed anonymous statement(s)" in done.stdout
    after = json.loads(admin_s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert after == ours and len(after) == 1
    assert anonymous_put(f"{s3_env['S3_ENDPOINT']}/{bucket}/imagegen/x.html") == 403


def test_setup_wrong_secret_names_the_keys(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """A wrong secret gives one line naming S3_ACCESS_KEY and S3_SECRET_KEY, exit 1."""
    monkeypatch.setenv("S3_SECRET_KEY", "wrong-secret-value")
    done = cli_here("setup")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "S3_ACCESS_KEY" in done.stderr and "S3_SECRET_KEY" in done.stderr
    assert "wrong-secret-value" not in done.stdout + done.stderr
