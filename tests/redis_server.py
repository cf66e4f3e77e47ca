"""Starts, kills and restarts a real redis-server for tests: a free loopback port, its own folder.

Data is kept in an append-only file (``--appendonly yes``, fsync every write), so a server killed
with SIGKILL and restarted on the same port and folder has every acknowledged write back.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port


def redis_binary() -> str:
    """Path of Debian's redis-server; fails loudly when it is missing (`make system-deps`)."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError(
            "redis-server is missing: run `make system-deps` (scripts/system-deps.sh)"
        )
    return found


@dataclass
class RedisServer:
    """One redis-server process on 127.0.0.1."""

    binary: str
    folder: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    password: str = ""
    """When set, clients must AUTH with it (``requirepass``)."""
    tls: bool = False
    """Serve TLS only (``rediss://``), with a self-signed certificate for 127.0.0.1 made by
    openssl in the folder (``cert.pem``, also the CA clients trust)."""
    fsync: str = "always"
    """``appendfsync``: always for the tests (a SIGKILL loses nothing acknowledged); everysec is
    Redis's default, what a deployment runs (the benchmark uses it)."""

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (TLS only)."""
        return self.folder / "cert.pem"

    @property
    def url(self) -> str:
        """redis://[:password@]127.0.0.1:PORT/0, or rediss://… trusting ``cert`` with TLS."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.cert}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start the server (same port and folder when restarted) and wait until it answers."""
        self.port = self.port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            self._make_certificate()
            key = str(self.folder / "key.pem")
            args[args.index("--port") + 1] = "0"  # no plain-text port at all
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(self.cert)]
            args += ["--tls-key-file", key, "--tls-ca-cert-file", str(self.cert)]
            args += ["--tls-auth-clients", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def _make_certificate(self) -> None:
        if self.cert.exists():
            return
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(self.folder / "key.pem"), "-out", str(self.cert),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.folder / 'redis.log'}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer; see {self.folder / 'redis.log'}")

    def ping(self) -> bool:
        """True when the server answers PING (and has loaded its data: else it says LOADING)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                if not self.tls:
                    return _pong(raw)
                context = ssl.create_default_context(cafile=self.cert)
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
                    return _pong(wrapped)
        except OSError:
            return False

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Start again on the same port and folder: the append-only file brings the data back."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _pong(sock: socket.socket) -> bool:
    sock.sendall(b"PING\r\n")
    # With a password PING is refused (NOAUTH), which still proves the data is loaded.
    return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))


def _bulk(word: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(word), word)


def _hello_6_2(protocol: int) -> bytes:
    """HELLO's answer from Redis 6.2.14: a map under RESP3, a flat array under RESP2."""
    fields = [
        (b"server", _bulk(b"redis")),
        (b"version", _bulk(b"6.2.14")),
        (b"proto", b":%d\r\n" % protocol),
        (b"id", b":7\r\n"),
        (b"mode", _bulk(b"standalone")),
        (b"role", _bulk(b"master")),
        (b"modules", b"*0\r\n"),
    ]
    head = b"%%%d\r\n" % len(fields) if protocol == 3 else b"*%d\r\n" % (2 * len(fields))
    return head + b"".join(_bulk(name) + value for name, value in fields)


async def answer_as_redis_6(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stand-in for Redis 6.2.14 that answers what a client says on connecting as 6.2 does.

    HELLO 2/3 switches the protocol and answers with the server's map (RESP3) or array (RESP2),
    as Redis 6.0+ does; CLIENT SETINFO (added in 7.2) is an unknown subcommand; INFO answers an
    old version, as a verbatim string under RESP3; SELECT, SET and the rest answer OK.
    """
    protocol = 2
    while line := await reader.readline():
        if not line.startswith(b"*"):
            continue
        words = []
        for _ in range(int(line[1:])):
            size = int((await reader.readline())[1:])
            words.append((await reader.readexactly(size + 2))[:-2])
        command = [words[0].upper(), *(w.upper() for w in words[1:2])]
        if command[0] == b"HELLO":
            wanted = int(words[1]) if len(words) > 1 else protocol
            if wanted not in (2, 3):
                writer.write(b"-NOPROTO unsupported protocol version\r\n")
            else:
                protocol = wanted
                writer.write(_hello_6_2(protocol))
        elif command == [b"CLIENT", b"SETINFO"]:
            writer.write(
                b"-ERR Unknown subcommand or wrong number of arguments for 'SETINFO'. "
                b"Try CLIENT HELP.\r\n"
            )
        elif command[0] == b"INFO":
            body = b"# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n"
            if protocol == 3:
                writer.write(b"=%d\r\ntxt:%s\r\n" % (len(body) + 4, body))
            else:
                writer.write(_bulk(body))
        else:
            writer.write(b"+OK\r\n")
        await writer.drain()
    writer.close()
