"""Deployment files under infra/: systemd units, nginx example, compose file and Dockerfiles.

Each check runs the real tool (systemd-analyze, nginx, docker compose / docker-compose, openssl,
curl) on a copy of the file in a temporary directory; nothing under /etc is read or written.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from imgbot.config.settings import Settings
from imgbot.presign import Presigner
from tests.minio_server import MinioServer
from tests.polling import poll_until
from tests.processes import ROOT, free_port

pytestmark = pytest.mark.infra

INFRA = ROOT / "infra"
UNITS = {
    "minio.service": "/usr/local/bin/minio",
    "imgbot.service": "/opt/imgbot/.venv/bin/imgbot",
    "seaweedfs.service": "/usr/local/bin/weed",
}
NGINX_EXAMPLE = INFRA / "nginx/imgbot-minio.conf"
EXAMPLE_CERT = "/etc/letsencrypt/live/img.example.com/fullchain.pem"
EXAMPLE_KEY = "/etc/letsencrypt/live/img.example.com/privkey.pem"
# systemd-analyze security scores 0 (locked down) to 10 (unprotected), x10 on --threshold.
MAX_EXPOSURE = 2.0


def _tool(name: str) -> str:
    """Path of a command-line tool the infra checks need; fail (not skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; scripts/system-deps.sh installs it")
    return path


def _run(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )


# --- systemd ----------------------------------------------------------------------------------


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A root directory for `systemd-analyze --root`: our units, systemd's own, stub binaries."""
    root = tmp_path / "root"
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for name in UNITS:
        shutil.copy(INFRA / "systemd" / name, system / name)
    # The targets our units order against (network-online, multi-user, sysinit...).
    shutil.copytree(_system_unit_dir(), root / "usr/lib/systemd/system", symlinks=True)
    # Every command line is checked for an executable at its path inside the root.
    for binary in [*UNITS.values(), "/bin/sh"]:
        stub = root / binary.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


def _system_unit_dir() -> Path:
    for candidate in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if (Path(candidate) / "multi-user.target").exists():
            return Path(candidate)
    pytest.fail("systemd's unit directory was not found; install the systemd package")


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_verifies_cleanly(unit: str, unit_root: Path) -> None:
    """systemd-analyze verify loads the unit with no error and no warning."""
    analyze = _tool("systemd-analyze")
    done = _run(analyze, "verify", "--man=no", f"--root={unit_root}", f"/etc/systemd/system/{unit}")
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_is_hardened(unit: str, unit_root: Path) -> None:
    """systemd-analyze security rates the unit's exposure at most MAX_EXPOSURE."""
    analyze = _tool("systemd-analyze")
    done = _run(
        analyze,
        "security",
        "--offline=yes",
        "--man=no",
        f"--root={unit_root}",
        f"--threshold={int(MAX_EXPOSURE * 10)}",
        "--no-pager",
        f"/etc/systemd/system/{unit}",
    )
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert score, done.stdout + done.stderr
    assert done.returncode == 0 and float(score.group(1)) <= MAX_EXPOSURE, done.stdout[-3000:]


def test_systemd_units_keep_the_promised_settings() -> None:
    """The units run as their own users, restart on failure and write only where they must."""
    minio = _unit_settings(INFRA / "systemd/minio.service")
    bot = _unit_settings(INFRA / "systemd/imgbot.service")
    assert minio["User"] == ["minio-user"] and minio["EnvironmentFile"] == ["/etc/default/minio"]
    assert minio["ExecStart"] == ["/usr/local/bin/minio server $MINIO_OPTS $MINIO_VOLUMES"]
    assert minio["ReadWritePaths"] == ["/var/lib/minio"]
    assert bot["User"] == ["imgbot"] and bot["WorkingDirectory"] == ["/opt/imgbot"]
    assert bot["ExecStart"] == ["/opt/imgbot/.venv/bin/imgbot run"]
    assert "ExecStartPre" not in bot  # a failing doctor must not block restarts
    assert "minio.service" in bot["After"][0].split()
    for unit in (minio, bot):
        assert unit["Restart"] == ["on-failure"] and unit["ProtectSystem"] == ["strict"]
        assert unit["CapabilityBoundingSet"] == [""] and unit["NoNewPrivileges"] == ["yes"]
        assert unit["WantedBy"] == ["multi-user.target"]


def test_seaweedfs_unit_runs_the_lifecycle_worker_on_loopback() -> None:
    """The SeaweedFS unit runs `weed mini` (admin + lifecycle worker), loopback only, no
    telemetry, with the identities file, as its own user writing only its state directory; the
    shipped bot identity reads and writes under the default bucket's default prefix only."""
    unit = _unit_settings(INFRA / "systemd/seaweedfs.service")
    [command] = unit["ExecStart"]
    flags = command.split()
    assert flags[:2] == ["/usr/local/bin/weed", "mini"]
    for flag in ("-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"):
        assert flag in flags
    assert "-s3.config=/etc/seaweedfs/s3.json" in flags
    assert int(next(f for f in flags if f.startswith("-volume.max=")).split("=")[1]) >= 70
    assert unit["User"] == ["seaweedfs"] and unit["ReadWritePaths"] == ["/var/lib/seaweedfs"]
    assert unit["Restart"] == ["on-failure"] and unit["ProtectSystem"] == ["strict"]
    identities = json.loads((INFRA / "seaweedfs/s3.json").read_text())["identities"]
    bot = next(i for i in identities if i["name"] == "imgbot")
    defaults = Settings.model_fields
    place = f"{defaults['s3_bucket'].default}/{defaults['s3_prefix'].default}*"
    assert bot["actions"] == [f"Read:{place}", f"Write:{place}"]


def _unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


# --- nginx ------------------------------------------------------------------------------------


@dataclass
class TlsFiles:
    cert: Path
    key: Path


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for img.example.com and 127.0.0.1, and its key, made with openssl."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    done = _run(
        _tool("openssl"),
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=img.example.com",
        "-addext",
        "subjectAltName=DNS:img.example.com,IP:127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    assert done.returncode == 0, done.stderr
    return cert, key


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    """A self-signed certificate for img.example.com and 127.0.0.1, made with openssl."""
    return TlsFiles(*self_signed(tmp_path))


def _nginx_site(tls: TlsFiles, ports: tuple[int, int, int] | None = None) -> str:
    """The example with test certificates; with ports (https, http, upstream), runnable here."""
    text = NGINX_EXAMPLE.read_text()
    for path, test_path in ((EXAMPLE_CERT, tls.cert), (EXAMPLE_KEY, tls.key)):
        assert text.count(path) == 1, f"expected {path} once in the example"
        text = text.replace(path, str(test_path))
    if ports is not None:
        https, http, upstream = ports
        replacements = {
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
            "listen 80;": f"listen 127.0.0.1:{http};",
            "proxy_pass http://127.0.0.1:9000;": f"proxy_pass http://127.0.0.1:{upstream};",
        }
        for old, new in replacements.items():
            # Directive lines only, not the comments that quote them.
            text, count = re.subn(
                rf"^(\s*){re.escape(old)}$", rf"\g<1>{new}", text, flags=re.MULTILINE
            )
            assert count == 1, f"expected the directive {old!r} once in the example"
        # IPv6 may be off on a test machine; the IPv4 listeners above stand for them.
        text = re.sub(r"^\s*listen \[::\]:\S+.*$", "", text, flags=re.MULTILINE)
    return text


def _nginx_conf(tmp_path: Path, site: str, *, foreground: bool) -> Path:
    """A minimal nginx.conf that includes ``site``, with every path under ``tmp_path``."""
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx-temp"
    temp.mkdir(exist_ok=True)
    main = "daemon off;\nmaster_process off;\n" if foreground else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"{main}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n"
        f"    access_log {tmp_path}/access.log;\n"
        + "".join(
            f"    {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"    include {tmp_path}/site.conf;\n"
        "}\n"
    )
    return conf


def _nginx_problems(output: str) -> list[str]:
    """Lines of nginx's output that report a problem (the http2 deprecation on new nginx aside)."""
    return [
        line
        for line in output.splitlines()
        if re.search(r"\[(warn|error|emerg|crit|alert)\]", line)
        and 'http2" directive is deprecated' not in line
    ]


def test_nginx_accepts_the_example(tmp_path: Path, tls: TlsFiles) -> None:
    """nginx -t accepts the example as shipped, with only the certificate paths changed."""
    nginx = _tool("nginx")
    conf = _nginx_conf(tmp_path, _nginx_site(tls), foreground=False)
    done = _run(
        nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "test is successful" in output, output
    assert not _nginx_problems(output), output


@pytest.fixture
def nginx_proxy(tmp_path: Path, tls: TlsFiles, minio: MinioServer) -> Iterator[tuple[int, int]]:
    """The example running in front of the session's MinIO: yields (https port, http port)."""
    nginx = _tool("nginx")
    https, http = free_port(), free_port()
    conf = _nginx_conf(tmp_path, _nginx_site(tls, (https, http, minio.port)), foreground=True)
    log = (tmp_path / "nginx.out").open("w")
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        poll_until(lambda: process.poll() is not None or _accepts(https), 10, "nginx")
        if process.poll() is not None:
            log.flush()
            pytest.fail(f"nginx did not start: {(tmp_path / 'nginx.out').read_text()}")
        yield https, http
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _fetch(
    url: str, context: ssl.SSLContext | None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, data=b"x" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.minio
def test_nginx_example_serves_signed_links_from_minio(
    nginx_proxy: tuple[int, int], tls: TlsFiles, minio: MinioServer, admin_s3: Any, bucket: str
) -> None:
    """Through the example, a link signed for the public host works; writes and plain HTTP don't."""
    https, http = nginx_proxy
    admin_s3.create_bucket(Bucket=bucket)
    # A key that needs percent-encoding: the path MinIO sees must be the one that was signed.
    key = "imagegen/2026/01/02/a b+c.png"
    body = bytes(range(256)) * 64  # binary, so any added Content-Encoding would corrupt it
    admin_s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
    public = f"https://127.0.0.1:{https}"  # a non-default port: `Host $host` would drop it
    link = (
        Presigner(
            public_endpoint=public,
            bucket=bucket,
            region="us-east-1",
            access_key=minio.access_key,
            secret_key=minio.secret_key,
            addressing_style="path",
            ttl=600,
        )
        .link(key)
        .url
    )
    assert "%20b%2Bc.png?" in link
    context = ssl.create_default_context(cafile=str(tls.cert))

    status, headers, got = _fetch(link, context)
    assert status == 200, got[:500]
    assert got == body and "Content-Encoding" not in headers
    assert headers["Content-Type"] == "image/png"

    # Phones speak HTTP/2; nginx must turn :authority into the Host MinIO checks.
    out = tls.cert.parent / "h2.bin"
    done = _run(
        _tool("curl"),
        "-sS",
        "--http2",
        "--cacert",
        str(tls.cert),
        "-o",
        str(out),
        "-w",
        "%{http_code} %{http_version}",
        link,
    )
    assert done.stdout == "200 2" and out.read_bytes() == body, done.stdout + done.stderr

    # Unsigned GET reaches MinIO, which refuses it (private bucket): an S3 XML error.
    status, _, got = _fetch(f"{public}/{bucket}/imagegen/2026/01/02/a%20b%2Bc.png", context)
    assert status == 403 and b"<Error>" in got, got[:500]

    # Writes are refused by nginx itself, before MinIO (an HTML page, not S3 XML).
    status, _, got = _fetch(f"{public}/{bucket}/imagegen/x.png", context, method="PUT")
    assert status == 403 and b"nginx" in got and b"<Error>" not in got, got[:500]

    # Plain HTTP only redirects to HTTPS, keeping the path and query.
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"http://127.0.0.1:{http}/{bucket}/k?x=1", timeout=10)
    with redirect.value as answer:
        assert answer.code == 301
        assert answer.headers["Location"] == f"https://127.0.0.1/{bucket}/k?x=1"


# --- compose and Dockerfiles ------------------------------------------------------------------


def _compose_command() -> list[str]:
    """`docker compose` (v2 plugin) when present, else Debian's `docker-compose` (v1)."""
    docker = shutil.which("docker")
    if docker and _run(docker, "compose", "version").returncode == 0:
        return [docker, "compose"]
    return [_tool("docker-compose")]


def _compose_config(project: Path, *overrides: str, base: str = "compose.yaml") -> dict[str, Any]:
    """The resolved configuration of ``base`` plus ``overrides`` (files in infra/), as the
    compose tool itself prints it."""
    command = _compose_command()
    args = ["-p", "imgbot", "--env-file", str(project / ".env"), "-f", f"infra/{base}"]
    for name in overrides:
        args += ["-f", f"infra/{name}"]
    if command[-1] == "compose":
        done = _run(*command, *args, "config", "--format", "json", cwd=project)
        assert done.returncode == 0, done.stderr
        return cast("dict[str, Any]", json.loads(done.stdout))
    done = _run(*command, *args, "config", cwd=project)
    assert done.returncode == 0, done.stderr
    # docker-compose v1 prints YAML only; its own interpreter has PyYAML (compose needs it).
    interpreter = Path(command[0]).read_text().splitlines()[0].removeprefix("#!").split()
    converted = subprocess.run(
        [
            *interpreter,
            "-c",
            "import json,sys,yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ],
        input=done.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    return cast("dict[str, Any]", json.loads(converted.stdout))


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """A copy of the repository's layout that compose needs: infra/ files and a filled-in .env."""
    (tmp_path / "infra").mkdir()
    shutil.copy(INFRA / "compose.yaml", tmp_path / "infra/compose.yaml")
    shutil.copytree(INFRA / "docker", tmp_path / "infra/docker")
    env = (ROOT / ".env.example").read_text()
    env += "\nMINIO_ROOT_USER=root-user\nMINIO_ROOT_PASSWORD=root-password-123\n"
    env += "S3_ACCESS_KEY=bot-user\nS3_SECRET_KEY=bot-secret-123\n"
    (tmp_path / ".env").write_text(env)
    return tmp_path


def test_compose_file_is_accepted(compose_project: Path) -> None:
    """docker compose config accepts the file and resolves it to the intended services."""
    config = _compose_config(compose_project)
    services = config["services"]
    assert set(services) == {"minio", "setup", "imgbot"}
    for name, service in services.items():
        build = service["build"]
        dockerfile = Path(build["context"]) / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    minio, setup, bot = services["minio"], services["setup"], services["imgbot"]
    assert "/minio/health/live" in " ".join(minio["healthcheck"]["test"])
    assert minio["environment"]["MINIO_ROOT_PASSWORD"] == "root-password-123"
    assert any(
        str(v).startswith("minio-data:")
        or (isinstance(v, dict) and v.get("source") == "minio-data")
        for v in minio["volumes"]
    )
    assert "minio-data" in config["volumes"]
    assert setup["command"] == ["imgbot", "setup"]
    assert setup["depends_on"]["minio"]["condition"] == "service_healthy"
    assert setup["environment"]["S3_ACCESS_KEY"] == "root-user"
    assert bot["command"] == ["imgbot", "run"]
    assert bot["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert bot["depends_on"]["minio"]["condition"] == "service_healthy"
    assert bot["environment"]["S3_ENDPOINT"] == "http://minio:9000"
    assert bot["environment"]["S3_ACCESS_KEY"] == "bot-user"
    assert not bot["environment"]["MINIO_ROOT_PASSWORD"], "the bot must not see MinIO's root secret"


def test_compose_seaweedfs_is_accepted(compose_project: Path) -> None:
    """compose.seaweedfs.yaml: weed mini on loopback ports with the identities file, setup with
    the admin identity, the bot with its own identity and none of the admin's."""
    shutil.copy(INFRA / "compose.seaweedfs.yaml", compose_project / "infra/compose.seaweedfs.yaml")
    with (compose_project / ".env").open("a") as env:
        env.write("SEAWEEDFS_ADMIN_ACCESS_KEY=weed-admin\nSEAWEEDFS_ADMIN_SECRET_KEY=weed-secret\n")
    config = _compose_config(compose_project, base="compose.seaweedfs.yaml")
    services = config["services"]
    assert set(services) == {"seaweedfs", "setup", "imgbot"}
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    weed, setup, bot = services["seaweedfs"], services["setup"], services["imgbot"]
    assert weed["command"][0] == "mini" and "-master.telemetry=false" in weed["command"]
    assert "-s3.config=/etc/seaweedfs/s3.json" in weed["command"]
    assert setup["environment"]["S3_ACCESS_KEY"] == "weed-admin"
    assert setup["environment"]["S3_ENDPOINT"] == "http://seaweedfs:8333"
    assert bot["environment"]["S3_ACCESS_KEY"] == "bot-user"
    assert not bot["environment"]["SEAWEEDFS_ADMIN_SECRET_KEY"]
    assert bot["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_compose_replicas_share_one_redis(compose_project: Path) -> None:
    """compose.replicas.yaml: three bots on one password-protected Redis that keeps its data
    (appendonly, a volume) and never evicts; each bot's metrics on its own loopback port."""
    shutil.copy(INFRA / "compose.replicas.yaml", compose_project / "infra/compose.replicas.yaml")
    with (compose_project / ".env").open("a") as env:
        env.write("REDIS_PASSWORD=redis-pass-123\n")
    config = _compose_config(compose_project, "compose.replicas.yaml")
    services = config["services"]
    bots = ["imgbot", "imgbot2", "imgbot3"]
    assert set(services) == {"minio", "setup", "redis", *bots}
    for name in bots:
        bot = services[name]
        assert bot["command"] == ["imgbot", "run"]
        assert bot["environment"]["STATE_URL"] == "redis://:redis-pass-123@redis:6379/0"
        assert bot["environment"]["S3_ACCESS_KEY"] == "bot-user"
        assert not bot["environment"]["MINIO_ROOT_PASSWORD"]
        assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
    host_ports = []
    for name in bots:
        (port,) = services[name]["ports"]
        host_ip, published = (
            (port["host_ip"], int(port["published"]))
            if isinstance(port, dict)
            else (port.split(":")[0], int(port.split(":")[1]))
        )
        assert host_ip == "127.0.0.1"
        host_ports.append(published)
    assert sorted(host_ports) == [9464, 9465, 9466]
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "--requirepass" in command and not redis.get("ports")
    assert "redis-data" in config["volumes"]
    assert "imgbot-state" in config["volumes"]


def test_compose_without_redis_password_refuses(compose_project: Path) -> None:
    """The replicas file stops with a message naming REDIS_PASSWORD when .env has none."""
    shutil.copy(INFRA / "compose.replicas.yaml", compose_project / "infra/compose.replicas.yaml")
    done = _run(
        *_compose_command(),
        "-p",
        "imgbot",
        "--env-file",
        str(compose_project / ".env"),
        "-f",
        "infra/compose.yaml",
        "-f",
        "infra/compose.replicas.yaml",
        "config",
        cwd=compose_project,
    )
    assert done.returncode != 0 and "REDIS_PASSWORD" in done.stderr, done.stderr


def test_compose_refuses_to_start_without_minio_credentials(compose_project: Path) -> None:
    """Without MINIO_ROOT_USER/PASSWORD the compose tool stops with a message naming the key."""
    env = compose_project / ".env"
    env.write_text(re.sub(r"^MINIO_ROOT_\w+=.*$", "", env.read_text(), flags=re.MULTILINE))
    done = _run(
        *_compose_command(),
        "-p",
        "imgbot",
        "--env-file",
        str(env),
        "-f",
        "infra/compose.yaml",
        "config",
        cwd=compose_project,
    )
    assert done.returncode != 0 and "MINIO_ROOT_" in done.stderr, done.stderr


def test_dockerfiles_pin_minio_and_run_unprivileged() -> None:
    """Both images run as a non-root user; MinIO's pin equals infra/minio/build.sh's."""
    pin = re.search(
        r'MINIO_VERSION="\$\{MINIO_VERSION:-([^}]+)\}"', (INFRA / "minio/build.sh").read_text()
    )
    assert pin, "MINIO_VERSION not found in infra/minio/build.sh"
    minio_file = (INFRA / "docker/minio.Dockerfile").read_text()
    assert f"ARG MINIO_VERSION={pin.group(1)}" in minio_file
    assert f"MINIO_VERSION: {pin.group(1)}" in (INFRA / "compose.yaml").read_text()
    assert re.search(r"^FROM golang:\S+ AS build$", minio_file, flags=re.MULTILINE)
    assert "COPY --from=build /go/bin/minio " in minio_file

    bot_file = (INFRA / "docker/imgbot.Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", bot_file, flags=re.MULTILINE)
    assert 'CMD ["imgbot", "run"]' in bot_file
    for text in (minio_file, bot_file):
        users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
        assert users and users[-1] not in {"root", "0"}
    # Everything the imgbot image copies exists in the build context (the repository root).
    for line in re.findall(r"^COPY (?!--)(.+)$", bot_file, flags=re.MULTILINE):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"imgbot.Dockerfile copies missing {source}"
