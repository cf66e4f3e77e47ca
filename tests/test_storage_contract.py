"""The storage contract, one suite run against every real S3 server the tests start: MinIO and
SeaweedFS. Setup, lifecycle read back by an independent client, a private bucket, presigned links,
path and virtual-host addressing, object metadata, doctor, and a bot answering with a picture.

Where the servers differ the test says how (``differs``), so a change on either side shows up.
The last tests are SeaweedFS's own: its lifecycle worker really deletes (with the shipped unit's
flags too), and what its least-privilege identity (the one infra/seaweedfs/s3.json ships) may do.
"""

from __future__ import annotations

import asyncio
import io
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import IMAGE_RE, LINK_RE, running_bot
from tests.conftest import CliRunner, point_at_s3
from tests.images import photo_png
from tests.polling import poll_until, wait_until
from tests.processes import ROOT, VIRTUAL_HOST_DOMAIN, free_port
from tests.seaweedfs_server import BOT_BUCKET, BOT_PREFIX, SeaweedServer, weed_binary
from tests.test_setup_publish import fetch, publish_json

CAT = "帮我画一只可爱的小猫"


@dataclass(frozen=True)
class Server:
    """What a test needs of one running S3 server."""

    name: str  # "minio" or "seaweedfs"
    endpoint: str
    access_key: str
    secret_key: str
    provider: str  # the S3_PROVIDER imgbot is configured with for it

    def client(self, access: str = "", secret: str = "", **s3: Any) -> Any:
        """An independent boto3 client (admin keys unless others are given)."""
        return boto3.client(
            "s3",
            endpoint_url=s3.pop("endpoint_url", self.endpoint),
            region_name="us-east-1",
            aws_access_key_id=access or self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path", **s3},
                retries={"max_attempts": 1},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


@pytest.fixture(
    params=[
        pytest.param("minio", marks=pytest.mark.minio),
        pytest.param("seaweedfs", marks=pytest.mark.seaweedfs),
    ]
)
def server(request: pytest.FixtureRequest) -> Server:
    """Each S3 server of the suite in turn (one session-wide process each)."""
    if request.param == "minio":
        minio = request.getfixturevalue("minio")
        return Server("minio", minio.endpoint, minio.access_key, minio.secret_key, "minio")
    return weed_admin(request.getfixturevalue("seaweedfs"))


def weed_admin(weed: SeaweedServer) -> Server:
    """SeaweedFS with its admin identity; to imgbot it is "any other S3" (S3_PROVIDER=s3)."""
    return Server("seaweedfs", weed.endpoint, weed.access_key, weed.secret_key, "s3")


@pytest.fixture
def env(server: Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """imgbot's environment for ``server`` with the admin keys and this test's bucket."""
    keys = (server.access_key, server.secret_key)
    return point_at_s3(monkeypatch, server.endpoint, keys, bucket, s3_provider=server.provider)


def test_setup_is_idempotent_and_keeps_foreign_rules(
    env: dict[str, str],
    server: Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """setup twice: our rule read back by boto3, a rule another tool added survives a re-merge;
    on SeaweedFS setup says expiry needs its lifecycle worker."""
    first = cli_here("setup")
    assert first.returncode == 0
    assert ("lifecycle worker" in first.stdout) == (server.name == "seaweedfs"), first.stdout
    admin = server.client()
    [rule] = admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (rule["ID"], rule["Filter"]["Prefix"], rule["Expiration"]["Days"]) == (
        "imgbot-expire-images",
        "imagegen/",
        7,
    )
    foreign = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}}
    admin.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [rule, {**foreign, "Expiration": {"Days": 30}}]},
    )
    again = cli_here("setup")
    assert again.returncode == 0 and "already expires" in again.stdout
    monkeypatch.setenv("IMAGE_RETENTION_DAYS", "3")
    merged = cli_here("setup")
    assert merged.returncode == 0 and "1 other rule(s) kept" in merged.stdout
    rules = admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules}
    assert days == {"imagegen/": 3, "logs/": 30}


def test_bucket_refuses_anonymous_get_list_and_put(
    env: dict[str, str], server: Server, bucket: str, tmp_path: Any, cli_here: CliRunner
) -> None:
    """After setup an unsigned GET, listing and PUT are all refused with 403."""
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    key = publish_json(cli_here, str(tmp_path / "a.png"))["key"]
    assert fetch(f"{server.endpoint}/{bucket}/{key}")[0] == 403
    assert fetch(f"{server.endpoint}/{bucket}/?list-type=2")[0] == 403
    put = urllib.request.Request(
        f"{server.endpoint}/{bucket}/imagegen/anonymous.txt", data=b"x", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put, timeout=10)
    assert refused.value.code == 403
    with pytest.raises(ClientError):
        server.client().head_object(Bucket=bucket, Key="imagegen/anonymous.txt")


def test_setup_removes_an_anonymous_read_policy(
    env: dict[str, str], server: Server, bucket: str, cli_here: CliRunner
) -> None:
    """A bucket policy letting anyone read imagegen/ works on the server, and setup removes it."""
    import json

    assert cli_here("setup").returncode == 0
    admin = server.client()
    admin.put_object(Bucket=bucket, Key="imagegen/x.txt", Body=b"x")
    statement = {
        "Sid": "oops",
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/imagegen/*"],
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert fetch(f"{server.endpoint}/{bucket}/imagegen/x.txt")[0] == 200
    done = cli_here("setup")
    assert done.returncode == 0 and "oops" in done.stdout
    assert fetch(f"{server.endpoint}/{bucket}/imagegen/x.txt")[0] == 403


def test_links_load_fresh_and_are_refused_tampered_rehosted_or_expired(
    env: dict[str, str],
    server: Server,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """A fresh link loads; a changed signature, another host or an expired link get 403."""
    from imgbot.config.settings import load_settings
    from imgbot.presign import Presigner

    assert cli_here("setup").returncode == 0
    port = server.endpoint.rsplit(":", 1)[1]
    monkeypatch.setenv("S3_PUBLIC_ENDPOINT", f"http://localhost:{port}")
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    url = result["url"]
    status, headers, body = fetch(url)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(body)).format == "JPEG"
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert fetch(url.replace(signature, flipped))[0] == 403
    assert fetch(url.replace("http://localhost:", "http://127.0.0.1:"))[0] == 403
    # Signed ten seconds ago for one second, through the presigner's clock seam: expired.
    past = datetime.now(UTC) - timedelta(seconds=10)
    signer = Presigner.from_settings(load_settings()).with_clock(lambda: past)
    assert fetch(signer.link(result["preview_key"], ttl=1).url)[0] == 403
    assert fetch(signer.link(result["preview_key"], ttl=60).url)[0] == 200


def test_virtual_host_addressing_publishes_and_links_load(
    env: dict[str, str],
    server: Server,
    bucket: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    cli_here: CliRunner,
) -> None:
    """With S3_ADDRESSING_STYLE=virtual the bucket is named in the host (BUCKET.s3.test), for
    uploads and for links; names resolve through the server itself acting as HTTP proxy."""
    port = server.endpoint.rsplit(":", 1)[1]
    monkeypatch.setenv("S3_ENDPOINT", f"http://{VIRTUAL_HOST_DOMAIN}:{port}")
    monkeypatch.setenv("S3_ADDRESSING_STYLE", "virtual")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # Requests go to the server in absolute form; it reads the bucket from the Host.
    monkeypatch.setenv("HTTP_PROXY", server.endpoint)  # botocore reads it per client
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    assert result["url"].startswith(f"http://{bucket}.{VIRTUAL_HOST_DOMAIN}:{port}/imagegen/")
    proxied = urllib.request.build_opener(urllib.request.ProxyHandler({"http": server.endpoint}))
    with proxied.open(result["url"], timeout=10) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "image/jpeg"
    head = server.client().head_object(Bucket=bucket, Key=result["key"])  # path style, direct
    assert head["ContentType"] == "image/png"


def test_objects_carry_type_caching_disposition_and_expiry_header(
    env: dict[str, str], server: Server, bucket: str, tmp_path: Any, cli_here: CliRunner
) -> None:
    """Stored objects keep Content-Type, Cache-Control and inline Content-Disposition; only MinIO
    answers x-amz-expiration (SeaweedFS stores the rule but does not announce it per object)."""
    assert cli_here("setup").returncode == 0
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    head = server.client().head_object(Bucket=bucket, Key=result["key"])
    assert head["ContentType"] == "image/png"
    assert head["CacheControl"].startswith("private, max-age=")
    assert head["ContentDisposition"].startswith("inline")
    expiration = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    differs = {"minio": 'rule-id="imgbot-expire-images"', "seaweedfs": None}
    if differs[server.name] is None:
        assert expiration is None
    else:
        assert expiration is not None and str(differs[server.name]) in expiration


def test_objects_keep_the_prompt_and_generator_metadata(
    env: dict[str, str], server: Server, bucket: str, cli_here: CliRunner
) -> None:
    """`imgbot draw` stores prompt and generator on both objects, and the longest prompt the
    metadata budget allows is accepted by the server."""
    import json

    from tests.test_inspection import head_metadata

    assert cli_here("setup").returncode == 0
    done = cli_here("draw", "一只橘猫", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    admin = server.client()
    for key in (document["key"], document["preview_key"]):
        assert head_metadata(admin, bucket, key) == {
            "prompt": "一只橘猫",
            "generator": "placeholder",
        }
    longest = cli_here("draw", "猫" * 1000, "--json")
    assert longest.returncode == 0, longest.stderr
    stored = head_metadata(admin, bucket, json.loads(longest.stdout)["key"])["prompt"]
    assert stored == "猫" * len(stored) and 150 < len(stored) < 1000


def test_doctor_passes_every_storage_check_but_the_admin_keys(
    env: dict[str, str], cli_here: CliRunner
) -> None:
    """On a set-up bucket doctor finds the endpoint, keys, lifecycle and privacy right; the one
    problem is running with admin keys."""
    assert cli_here("setup").returncode == 0
    done = cli_here("doctor")
    problems = [line for line in done.stdout.splitlines() if line.startswith("PROBLEM")]
    assert done.returncode == 1 and len(problems) == 1, done.stdout + done.stderr
    assert "least privilege" in problems[0]
    assert "lifecycle" in done.stdout and "unwritable" in done.stdout


@pytest.mark.e2e
async def test_bot_answers_with_a_loadable_picture_and_is_healthy(
    env: dict[str, str], simulator: DingTalkSimulator
) -> None:
    """The bot on this server replies with a picture that loads, and /healthz says 200."""
    port = free_port()

    def get(url: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return answer.status, answer.headers["Content-Type"]
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    async with running_bot(simulator, metrics_port=port) as bot:
        await wait_until(lambda: bot.health()[0], what="bot healthy")
        health = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        assert health[0] == 200
        await simulator.send_text(CAT)
        _, answer = await simulator.wait_for_replies(2, timeout=30)
    assert answer.msgtype == "markdown"
    preview, original = IMAGE_RE.search(answer.text), LINK_RE.search(answer.text)
    assert preview and original
    for url in (preview.group(1), original.group(1)):
        status, content_type = await asyncio.to_thread(get, url)
        assert status == 200 and content_type.startswith("image/")


# --- SeaweedFS's own ---------------------------------------------------------------------------


def listed(client: Any, bucket: str) -> list[str]:
    """Every key in ``bucket``, sorted."""
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def add_due_rule(client: Any, bucket: str) -> None:
    """Add to ``bucket``'s lifecycle rules one that makes everything under due/ expire now.

    Expiration.Days cannot be under 1, so the short time scale is Expiration.Date: a date in the
    past makes every covered object due at the next run, through the same admin -> worker ->
    delete path the daily schedule takes for imgbot's rule."""
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError:
        rules = []  # none yet
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    due = {"ID": "due-now", "Status": "Enabled", "Filter": {"Prefix": "due/"}}
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [*rules, {**due, "Expiration": {"Date": midnight}}]},
    )


def wait_deleted_by_worker(weed: SeaweedServer, client: Any, bucket: str, key: str) -> None:
    """Run the lifecycle job until ``key`` is gone: HEAD answers 404 and listing omits it."""

    def gone() -> bool:
        weed.run_lifecycle()
        try:
            client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "404"
        return False

    poll_until(gone, timeout=60, what=f"the lifecycle worker deleting {key}")
    assert key not in listed(client, bucket)


@pytest.mark.seaweedfs
def test_seaweedfs_lifecycle_worker_deletes_what_a_rule_expires(
    seaweedfs: SeaweedServer, bucket: str, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """SeaweedFS's lifecycle worker (run by weed mini's admin) really deletes: an object there
    (HEAD 200, listed) under a rule whose expiry date has passed is gone after the next run;
    imgbot's 7-day objects stay."""
    server = weed_admin(seaweedfs)
    keys = (server.access_key, server.secret_key)
    point_at_s3(monkeypatch, server.endpoint, keys, bucket, s3_provider="s3")
    assert cli_here("setup").returncode == 0
    admin = server.client()
    add_due_rule(admin, bucket)
    admin.put_object(Bucket=bucket, Key="due/old.txt", Body=b"due")
    admin.put_object(Bucket=bucket, Key="imagegen/kept.txt", Body=b"kept")
    head = admin.head_object(Bucket=bucket, Key="due/old.txt")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert listed(admin, bucket) == ["due/old.txt", "imagegen/kept.txt"]
    wait_deleted_by_worker(seaweedfs, admin, bucket, "due/old.txt")
    assert listed(admin, bucket) == ["imagegen/kept.txt"]
    assert admin.head_object(Bucket=bucket, Key="imagegen/kept.txt")["ContentLength"] == 4


@pytest.mark.seaweedfs
def test_seaweedfs_bot_user_points_to_the_identities_file(
    seaweedfs: SeaweedServer, bucket: str, monkeypatch: pytest.MonkeyPatch, cli_here: CliRunner
) -> None:
    """setup --bot-user on SeaweedFS (S3_PROVIDER=s3) says how to make the bot's identity."""
    keys = (seaweedfs.access_key, seaweedfs.secret_key)
    point_at_s3(monkeypatch, seaweedfs.endpoint, keys, bucket, s3_provider="s3")
    done = cli_here("setup", "--bot-user", "imgbot")
    assert done.returncode == 2
    assert "infra/seaweedfs/s3.json" in done.stderr and "-s3.config" in done.stderr


@pytest.mark.seaweedfs
@pytest.mark.infra
def test_shipped_unit_flags_run_a_lifecycle_worker(tmp_path: Any, bucket: str) -> None:
    """weed started with infra/systemd/seaweedfs.service's own flags (only its data folder,
    identities file and ports are the test's, none of the unit's overridden) deletes an object a
    due lifecycle rule covers."""
    unit = (ROOT / "infra/systemd/seaweedfs.service").read_text()
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    flags = command.removeprefix("ExecStart=").split()
    assert flags[:2] == ["/usr/local/bin/weed", "mini"]
    places = {"-dir=/var/lib/seaweedfs", "-s3.config=/etc/seaweedfs/s3.json"}
    assert places <= set(flags)
    shaping = tuple(flag for flag in flags[2:] if flag not in places)
    weed = SeaweedServer(weed_binary(), tmp_path / "data", flags=shaping)
    weed.start()
    try:
        admin = weed_admin(weed).client()
        admin.create_bucket(Bucket=bucket)
        add_due_rule(admin, bucket)
        admin.put_object(Bucket=bucket, Key="due/old.txt", Body=b"due")
        assert listed(admin, bucket) == ["due/old.txt"]
        wait_deleted_by_worker(weed, admin, bucket, "due/old.txt")
    finally:
        weed.stop()


@pytest.fixture
def bot_bucket_env(seaweedfs: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> SeaweedServer:
    """SeaweedFS's bucket of the bot identity, set up with the admin identity; then the
    environment holds the bot identity's keys."""
    from tests.conftest import set_up_bucket

    keys = (seaweedfs.access_key, seaweedfs.secret_key)
    point_at_s3(monkeypatch, seaweedfs.endpoint, keys, BOT_BUCKET, s3_provider="s3")
    set_up_bucket()
    monkeypatch.setenv("S3_ACCESS_KEY", seaweedfs.bot_access_key)
    monkeypatch.setenv("S3_SECRET_KEY", seaweedfs.bot_secret_key)
    return seaweedfs


@pytest.mark.seaweedfs
def test_seaweedfs_bot_identity_stays_inside_its_prefix(
    bot_bucket_env: SeaweedServer, tmp_path: Any, cli_here: CliRunner
) -> None:
    """The shipped bot identity (Read and Write on BUCKET/imagegen/* only) publishes working
    links and passes doctor (the lifecycle rule "not measured"); it cannot read an object outside
    its prefix, list, write elsewhere, or read or change the lifecycle rules; it may delete under
    its prefix."""
    weed = bot_bucket_env
    server = weed_admin(weed)
    (tmp_path / "a.png").write_bytes(photo_png(64))
    result = publish_json(cli_here, str(tmp_path / "a.png"))
    assert fetch(result["url"])[0] == 200 and fetch(result["original_url"])[0] == 200
    server.client().put_object(Bucket=BOT_BUCKET, Key="elsewhere/other.txt", Body=b"other")
    bot = server.client(weed.bot_access_key, weed.bot_secret_key)
    assert bot.get_object(Bucket=BOT_BUCKET, Key=result["key"])["ContentLength"] > 0
    refused = [
        lambda: bot.get_object(Bucket=BOT_BUCKET, Key="elsewhere/other.txt"),
        lambda: bot.list_objects_v2(Bucket=BOT_BUCKET),
        lambda: bot.put_object(Bucket=BOT_BUCKET, Key="elsewhere/x.txt", Body=b"x"),
        lambda: bot.get_bucket_lifecycle_configuration(Bucket=BOT_BUCKET),
        lambda: bot.put_bucket_lifecycle_configuration(
            Bucket=BOT_BUCKET, LifecycleConfiguration={"Rules": []}
        ),
    ]
    for call in refused:
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    # SeaweedFS's Write action covers DeleteObject too (MinIO's bot policy has no delete).
    bot.put_object(Bucket=BOT_BUCKET, Key=f"{BOT_PREFIX}scratch.txt", Body=b"x")
    bot.delete_object(Bucket=BOT_BUCKET, Key=f"{BOT_PREFIX}scratch.txt")
    # SeaweedFS answers ListBuckets to every identity, with only what it may list: none here.
    doctor = cli_here("doctor")
    assert doctor.returncode == 0 and "PROBLEM" not in doctor.stdout, doctor.stdout
    assert "may not list buckets" in doctor.stdout
    [lifecycle] = [line for line in doctor.stdout.splitlines() if " lifecycle " in f" {line} "]
    assert lifecycle.startswith("ok") and "not measured" in lifecycle


@pytest.mark.seaweedfs
@pytest.mark.e2e
async def test_seaweedfs_bot_with_its_own_identity_is_healthy(
    bot_bucket_env: SeaweedServer, simulator: DingTalkSimulator
) -> None:
    """The bot running with the shipped least-privilege identity answers with a picture and its
    health (a conditional PUT of its probe object under the prefix) turns healthy."""
    async with running_bot(simulator, set_up=False) as bot:
        await wait_until(lambda: bot.health()[0], what="bot healthy")
        await simulator.send_text(CAT)
        _, answer = await simulator.wait_for_replies(2, timeout=30)
    preview = IMAGE_RE.search(answer.text)
    assert preview and fetch(preview.group(1))[0] == 200
