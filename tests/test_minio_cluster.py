"""MinIO across drives and nodes: the shipped layouts, a real four-node MinIO behind the cluster
nginx example, and what `imgbot doctor` says as nodes go down.

The cluster runs on free loopback ports, each node with its own data folder; nginx runs the
example with its upstream pointed at those ports. Every server is stopped by its fixture.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.images import photo_png
from tests.minio_server import MinioCluster, minio_binary, server_env, spawn
from tests.polling import poll_until
from tests.processes import ROOT, free_port, wait_ready
from tests.test_infra import (
    MAX_EXPOSURE,
    _accepts,
    _compose_config,
    _nginx_conf,
    _nginx_problems,
    _run,
    _system_unit_dir,
    _tool,
    self_signed,
)

pytestmark = [pytest.mark.infra, pytest.mark.minio]

INFRA = ROOT / "infra"
CLUSTER_EXAMPLE = INFRA / "nginx/imgbot-minio-cluster.conf"
EXAMPLE_CERT = "/etc/letsencrypt/live/img.example.com/fullchain.pem"
EXAMPLE_KEY = "/etc/letsencrypt/live/img.example.com/privkey.pem"
REDUNDANCY = "storage redundancy"
FOUR_DRIVES = INFRA / "minio/env/four-drives"
FOUR_NODES = INFRA / "minio/env/four-nodes"
DRIVES_DROP_IN = INFRA / "systemd/minio.service.d/drives.conf"


@dataclass
class Front:
    """nginx running the cluster example: the bot's loopback listener and the public https one."""

    internal: int
    https: int
    cert: Path

    @property
    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def cluster_site(cert: Path, key: Path, ports: tuple[int, int, int], nodes: list[int]) -> str:
    """The cluster example with test certificates, listeners on ``ports`` (https, http,
    internal) and the upstream over ``nodes``; only directive lines change."""
    text = CLUSTER_EXAMPLE.read_text()
    for path, test_path in ((EXAMPLE_CERT, cert), (EXAMPLE_KEY, key)):
        assert text.count(path) == 1, f"expected {path} once in the example"
        text = text.replace(path, str(test_path))
    https, http, internal = ports
    replacements = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 127.0.0.1:9000;": f"listen 127.0.0.1:{internal};",
    }
    for old, new in replacements.items():
        text, count = re.subn(rf"^(\s*){re.escape(old)}$", rf"\g<1>{new}", text, flags=re.M)
        assert count == 1, f"expected the directive {old!r} once in the example"
    text = re.sub(r"^\s*listen \[::\]:\S+.*$", "", text, flags=re.M)
    ports_left = iter(nodes)
    text, count = re.subn(
        r"^(\s*server )minio\d\.example\.internal:9000( .*)?;$",
        lambda m: f"{m.group(1)}127.0.0.1:{next(ports_left)}{m.group(2) or ''};",
        text,
        flags=re.M,
    )
    assert count == len(nodes), f"expected {len(nodes)} upstream servers in the example"
    return text


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[MinioCluster]:
    """A four-node MinIO on loopback, one drive per node."""
    nodes = MinioCluster(minio_binary(), tmp_path / "cluster")
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def front(tmp_path: Path, cluster: MinioCluster) -> Iterator[Front]:
    """The cluster nginx example running in front of ``cluster``."""
    nginx = _tool("nginx")
    cert, key = self_signed(tmp_path)
    https, http, internal = free_port(), free_port(), free_port()
    site = cluster_site(cert, key, (https, http, internal), cluster.ports)
    conf = _nginx_conf(tmp_path, site, foreground=True)
    log = (tmp_path / "nginx.out").open("w")
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        started = lambda: _accepts(https) and _accepts(internal)  # noqa: E731
        poll_until(lambda: process.poll() is not None or started(), 10, "nginx")
        if process.poll() is not None:
            log.flush()
            pytest.fail(f"nginx did not start: {(tmp_path / 'nginx.out').read_text()}")
        yield Front(internal, https, cert)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def fetch(url: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def publish(path: Path) -> dict[str, Any]:
    done = run_cli("publish", str(path), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def redundancy_line(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if REDUNDANCY in line]
    return line


def doctor_until(
    says: Callable[[str], bool], within: float = 30.0, *, healthy: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run doctor until its redundancy line ``says`` what is expected (MinIO notices a dead node
    on its next call to it) and, when ``healthy``, every check passes (a write may be refused
    with SlowDownWrite while MinIO is still taking a node's loss in); fail with the last output
    after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        done = run_cli("doctor")
        if says(redundancy_line(done.stdout)) and (done.returncode == 0 or not healthy):
            return done
        if time.monotonic() > deadline:
            pytest.fail(f"doctor never said it:\n{done.stdout}{done.stderr}")


def test_nginx_accepts_the_cluster_example(tmp_path: Path) -> None:
    """nginx -t accepts the cluster example as shipped, with only the certificate paths changed."""
    cert, key = self_signed(tmp_path)
    text = (
        CLUSTER_EXAMPLE.read_text().replace(EXAMPLE_CERT, str(cert)).replace(EXAMPLE_KEY, str(key))
    )
    # The example's node names do not resolve here; nginx -t resolves upstream names.
    text = re.sub(r"minio\d\.example\.internal", "127.0.0.1", text)
    conf = _nginx_conf(tmp_path, text, foreground=False)
    done = _run(
        _tool("nginx"), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "e.log"), "-c", str(conf)
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "test is successful" in output, output
    assert not _nginx_problems(output), output
    upstream = re.search(r"upstream imgbot_minio \{(.*?)\}", CLUSTER_EXAMPLE.read_text(), re.S)
    assert upstream and upstream.group(1).count("server ") == 4
    assert CLUSTER_EXAMPLE.read_text().count("proxy_set_header Host $http_host;") == 2
    assert CLUSTER_EXAMPLE.read_text().count("proxy_pass http://imgbot_minio;") == 2


def test_cluster_behind_nginx_loses_a_node_then_quorum(
    cluster: MinioCluster, front: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four nodes behind nginx: setup and publish work; one node killed, publishing and old links
    still work and doctor says there is no margin left; two killed, doctor reports lost quorum."""
    bucket = f"t-{uuid.uuid4().hex[:20]}"
    env = {
        "S3_ENDPOINT": f"http://127.0.0.1:{front.internal}",
        "S3_PUBLIC_ENDPOINT": f"https://127.0.0.1:{front.https}",
        "S3_ACCESS_KEY": cluster.access_key,
        "S3_SECRET_KEY": cluster.secret_key,
        "S3_BUCKET": bucket,
        # doctor loads a fresh link through the https front, whose certificate is ours.
        "SSL_CERT_FILE": str(front.cert),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = run_cli("setup", "--bot-user", "imgbot-cluster")
    assert done.returncode == 0, done.stdout + done.stderr
    keys = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    monkeypatch.setenv("S3_ACCESS_KEY", keys["S3_ACCESS_KEY"])
    monkeypatch.setenv("S3_SECRET_KEY", keys["S3_SECRET_KEY"])
    photo = tmp_path / "photo.png"
    photo.write_bytes(photo_png(256))

    first = publish(photo)
    status, original = fetch(first["original_url"], front.context)
    assert status == 200 and original.startswith(b"\x89PNG")
    done = run_cli("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 drives needed to write" in redundancy_line(done.stdout)
    assert "the node that answered could be lost" in redundancy_line(done.stdout)

    cluster.kill(0)
    done = doctor_until(lambda line: "would stop uploads" in line, healthy=True)
    assert done.returncode == 0 and redundancy_line(done.stdout).startswith("ok"), done.stdout
    second = publish(photo)
    for result in (first, second):
        assert fetch(result["original_url"], front.context) == (200, original)

    cluster.kill(1)
    # Without quorum MinIO holds each upload until its lock wait gives up; don't wait that long.
    monkeypatch.setenv("S3_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("S3_ATTEMPTS", "1")
    done = doctor_until(lambda line: line.startswith("PROBLEM"))
    assert done.returncode == 1
    assert "lost write quorum (3 drives needed to write)" in redundancy_line(done.stdout)
    failed = run_cli("publish", str(photo))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    # Two of four drives still hold every object's data shards: reads keep working.
    assert fetch(first["original_url"], front.context) == (200, original)


# --- the shipped layouts ----------------------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an EnvironmentFile, quotes removed as systemd removes them."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    return values


def test_four_drive_layout_runs_erasure_coded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """four-drives' MINIO_VOLUMES, under a test folder, starts one node over four drives (write
    quorum 3); doctor says losing that node would stop uploads, as it has no other."""
    layout = env_file(FOUR_DRIVES)
    assert layout["MINIO_VOLUMES"] == "/mnt/disk{1...4}/minio"
    assert "--address 127.0.0.1:9000" in layout["MINIO_OPTS"]
    volumes = layout["MINIO_VOLUMES"].replace("/mnt/", f"{tmp_path}/mnt/")
    port, secret = free_port(), "test-secret-1234"
    log = tmp_path / "minio.log"
    process = spawn(
        minio_binary(),
        [volumes, "--address", f"127.0.0.1:{port}"],
        server_env("test-admin", secret),
        log,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/minio/health/cluster", [process], "MinIO", log, 30)
        assert sorted(p.name for p in (tmp_path / "mnt").iterdir()) == [
            f"disk{n}" for n in range(1, 5)
        ]
        for name, value in {
            "S3_ENDPOINT": f"http://127.0.0.1:{port}",
            "S3_ACCESS_KEY": "test-admin",
            "S3_SECRET_KEY": secret,
        }.items():
            monkeypatch.setenv(name, value)
        line = redundancy_line(run_cli("doctor").stdout)
        assert line.startswith("ok") and "3 drives needed to write" in line, line
        assert "losing the node that answered would stop uploads" in line, line
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_four_node_layout_matches_the_nginx_upstream() -> None:
    """four-nodes names the same four hosts and port as the cluster example's upstream, and
    listens where the other nodes can reach it."""
    layout = env_file(FOUR_NODES)
    volumes = layout["MINIO_VOLUMES"]
    assert volumes == "http://minio{1...4}.example.internal:9000/mnt/disk{1...4}/minio"
    assert "--address :9000" in layout["MINIO_OPTS"]
    assert "--console-address 127.0.0.1:9001" in layout["MINIO_OPTS"]
    hosts = [f"minio{n}.example.internal:9000" for n in range(1, 5)]
    upstream = re.findall(r"^\s*server ([^\s{]+:\d+)", CLUSTER_EXAMPLE.read_text(), flags=re.M)
    assert upstream == hosts
    assert env_file(FOUR_DRIVES).keys() == layout.keys()


@pytest.fixture
def drives_unit_root(tmp_path: Path) -> Path:
    """A root for `systemd-analyze --root`: minio.service, the drives drop-in, stub binaries."""
    root = tmp_path / "root"
    system = root / "etc/systemd/system"
    (system / "minio.service.d").mkdir(parents=True)
    shutil.copy(INFRA / "systemd/minio.service", system / "minio.service")
    shutil.copy(DRIVES_DROP_IN, system / "minio.service.d/drives.conf")
    shutil.copytree(_system_unit_dir(), root / "usr/lib/systemd/system", symlinks=True)
    for binary in ("/usr/local/bin/minio", "/bin/sh"):
        stub = root / binary.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def test_drives_drop_in_verifies_and_keeps_the_unit_hardened(drives_unit_root: Path) -> None:
    """minio.service with the drives drop-in loads cleanly and stays within MAX_EXPOSURE; the
    drop-in only adds the drives to ReadWritePaths, each optional."""
    analyze = _tool("systemd-analyze")
    unit = "/etc/systemd/system/minio.service"
    done = _run(analyze, "verify", "--man=no", f"--root={drives_unit_root}", unit)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output
    done = _run(
        analyze,
        "security",
        "--offline=yes",
        "--man=no",
        f"--root={drives_unit_root}",
        f"--threshold={int(MAX_EXPOSURE * 10)}",
        "--no-pager",
        unit,
    )
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert score and float(score.group(1)) <= MAX_EXPOSURE, done.stdout[-3000:]
    settings = [
        line
        for line in DRIVES_DROP_IN.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "["))
    ]
    assert settings == [
        "ReadWritePaths=-/mnt/disk1/minio -/mnt/disk2/minio -/mnt/disk3/minio -/mnt/disk4/minio"
    ]


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """A copy of what compose needs (infra/ files, a filled-in .env)."""
    shutil.copytree(INFRA, tmp_path / "infra")
    env = (ROOT / ".env.example").read_text()
    env += "\nMINIO_ROOT_USER=root-user\nMINIO_ROOT_PASSWORD=root-password-123\n"
    env += "S3_ACCESS_KEY=bot-user\nS3_SECRET_KEY=bot-secret-123\n"
    (tmp_path / ".env").write_text(env)
    return tmp_path


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name or host path, whichever form the tool printed."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            found[target] = source
    return found


def loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_compose_erasure_layout(compose_project: Path) -> None:
    """compose.erasure.yaml turns the one MinIO into an erasure set over four volumes."""
    config = _compose_config(compose_project, "compose.erasure.yaml")
    minio = config["services"]["minio"]
    assert minio["command"][:2] == ["server", "/data{1...4}"]
    drives = {f"/data{n}": f"minio-drive{n}" for n in range(1, 5)}
    assert drives.items() <= mounts(minio).items()
    assert set(drives.values()) <= set(config["volumes"])
    loopback_only(config["services"])
    dockerfile = (INFRA / "docker/minio.Dockerfile").read_text()
    assert "chown minio-user:minio-user /data /data1 /data2 /data3 /data4" in dockerfile


def test_compose_cluster_layout(compose_project: Path, tmp_path: Path) -> None:
    """compose.cluster.yaml: four nodes on one endpoint list, each its own volume, an nginx load
    balancer the bot and setup upload through; the balancer's config passes nginx -t."""
    config = _compose_config(compose_project, "compose.cluster.yaml")
    services = config["services"]
    nodes = ["minio", "minio2", "minio3", "minio4"]
    assert set(services) == {*nodes, "minio-lb", "setup", "imgbot"}
    command = ["server", "http://minio{1...4}:9000/data", "--address", ":9000"]
    assert all(services[n]["command"][:4] == command for n in nodes)
    assert services["minio"]["networks"]["default"]["aliases"] == ["minio1"]
    assert [mounts(services[n])["/data"] for n in nodes] == [
        "minio-data",
        "minio-data2",
        "minio-data3",
        "minio-data4",
    ]
    for node in nodes:
        assert "/minio/health/cluster" in " ".join(services[node]["healthcheck"]["test"])
    for name in ("setup", "imgbot"):
        assert services[name]["environment"]["S3_ENDPOINT"] == "http://minio-lb:9000"
        assert "minio-lb" in services[name]["depends_on"]
    assert services["setup"]["depends_on"]["minio4"]["condition"] == "service_healthy"
    loopback_only(services)
    lb_conf = Path(mounts(services["minio-lb"])["/etc/nginx/conf.d/default.conf"])
    assert lb_conf.is_file()
    text = lb_conf.read_text()
    assert re.findall(r"^\s*server ([^\s{]+:\d+)", text, flags=re.M) == [
        f"minio{n}:9000" for n in range(1, 5)
    ]
    assert "proxy_set_header Host $http_host;" in text
    site = re.sub(r"minio\d:9000", "127.0.0.1:9000", text).replace(
        "listen 9000;", f"listen 127.0.0.1:{free_port()};"
    )
    conf = _nginx_conf(tmp_path, site, foreground=False)
    done = _run(
        _tool("nginx"), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "e.log"), "-c", str(conf)
    )
    assert done.returncode == 0 and not _nginx_problems(done.stdout + done.stderr), done.stderr
