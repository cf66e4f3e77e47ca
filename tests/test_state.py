"""The state stores against real SQLite files and a real redis-server: one contract, two stores."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from imgbot.config.settings import load_settings
from imgbot.state import ImageEntry, Job, StateStore, StoreInUse, StoreUnavailable
from imgbot.state.redis_store import RedisStore
from imgbot.state.sqlite_store import SQLiteStore
from tests.processes import free_port
from tests.redis_server import RedisServer, answer_as_redis_6, redis_binary

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "redis"]
APP = "imgbot:test:"


class FakeClock:
    """The SQLite store's clock in tests: time moves only when the test moves it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 10.0) -> T:
    """Call ``probe`` until it returns something (not None); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing after {within} s")


class Later:
    """How a test lets time pass: the SQLite store's fake clock is moved on, so what follows is
    decided at once; Redis keeps its own clock (``TIME``), so the test asks until it holds."""

    def __init__(self, clock: FakeClock | None) -> None:
        self._clock = clock

    async def after(self, seconds: float, probe: Callable[[], Awaitable[T | None]]) -> T:
        """What ``probe`` finds once ``seconds`` have passed."""
        if self._clock is None:
            return await eventually(probe)
        self._clock.advance(seconds)
        found = await probe()
        assert found is not None, f"nothing after {seconds} s"
        return found


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store under test: "sqlite" or "redis"."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """The SQLite stores' clock."""
    return FakeClock()


@pytest.fixture
def later(backend: str, clock: FakeClock) -> Later:
    """Time passing for the store under test."""
    return Later(clock if backend == "sqlite" else None)


@pytest.fixture
async def stores(
    backend: str, clock: FakeClock, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[list[StateStore]]:
    """Two handles on one state, as two replicas hold them: two Redis connections; for SQLite
    (one process per file) the same store twice."""
    if backend == "sqlite":
        store = SQLiteStore(tmp_path / "state.db", app=APP, purge_every_seconds=0.0, clock=clock)
        yield [store, store]
        await store.aclose()
        return
    url = request.getfixturevalue("redis_url")
    pair = [RedisStore.from_url(url, APP) for _ in range(2)]
    yield list(pair)
    for one in pair:
        await one.aclose()


@pytest.fixture
def store(stores: list[StateStore]) -> StateStore:
    """One handle on the state."""
    return stores[0]


async def test_first_claim_of_a_message_wins(stores: list[StateStore]) -> None:
    """Of 50 concurrent claims of one msgId through two handles one wins; other ids are free."""
    claims = [stores[n % 2].claim_message("msg-1", 3600) for n in range(50)]
    results = await asyncio.gather(*claims)
    assert results.count(True) == 1
    assert await stores[1].claim_message("msg-2", 3600) is True


async def test_a_claimed_message_expires(store: StateStore, later: Later) -> None:
    """After its ttl a msgId can be claimed again (claims are not kept for ever)."""
    # That a claim is held within its ttl is test_first_claim_of_a_message_wins's part.
    assert await store.claim_message("msg-short", 0.2) is True

    async def again() -> bool | None:
        return True if await store.claim_message("msg-short", 0.2) else None

    assert await later.after(0.2, again)


async def test_rate_is_shared_and_tells_once(stores: list[StateStore]) -> None:
    """Two handles count one user's messages together; past the limit: tell once, then quiet."""
    verdicts = [await stores[n % 2].rate("alice", 3, 60) for n in range(6)]
    assert verdicts == ["allow", "allow", "allow", "tell", "quiet", "quiet"]
    assert await stores[1].rate("bob", 3, 60) == "allow"


async def test_rate_extra_takes_what_the_limit_leaves(stores: list[StateStore]) -> None:
    """Extra pictures of an allowed message take only what the window leaves, shared by handles."""
    a, b = stores
    assert await a.rate("dora", 5, 60) == "allow"
    assert await b.rate_extra("dora", 3, 5, 60) == 3
    assert await a.rate("dora", 5, 60) == "allow"
    assert await b.rate_extra("dora", 3, 5, 60) == 0
    assert await a.rate("dora", 5, 60) == "tell"
    assert await a.rate("erin", 2, 60) == "allow"
    assert await b.rate_extra("erin", 3, 2, 60) == 1
    assert await a.rate_extra("erin", 1, 2, 60) == 0


async def test_rate_hits_given_back_free_the_window(stores: list[StateStore]) -> None:
    """Hits given back (a message's extra pictures, not accepted) free their place at once, in
    every handle; giving back more than counted leaves an empty window."""
    a, b = stores
    assert await a.rate("fay", 4, 60) == "allow"
    assert await a.rate_extra("fay", 3, 4, 60) == 3
    await b.rate_give_back("fay", 3)
    assert await b.rate_extra("fay", 3, 4, 60) == 3
    await a.rate_give_back("fay", 10)
    assert [await b.rate("fay", 1, 60) for _ in range(2)] == ["allow", "tell"]


async def test_rate_window_slides(store: StateStore, later: Later) -> None:
    """Once the window has passed the user is allowed again, and told again when over."""
    # SQLite's clock stands still between the three calls; Redis's must run less than 1.5 s.
    assert [await store.rate("carol", 1, 1.5) for _ in range(3)] == ["allow", "tell", "quiet"]

    async def allowed() -> bool | None:
        return True if await store.rate("carol", 1, 1.5) == "allow" else None

    assert await later.after(1.5, allowed)
    assert [await store.rate("carol", 1, 1.5) for _ in range(2)] == ["tell", "quiet"]


async def test_submit_waits_then_busy(stores: list[StateStore]) -> None:
    """Past max_waiting a submit is "busy" and stores nothing; a known id is "known"."""
    a, b = stores
    assert await a.submit("j1", "p1", max_waiting=2, claim_for=None, lease_seconds=60) == "waiting"
    assert await b.submit("j2", "p2", max_waiting=2, claim_for=None, lease_seconds=60) == "waiting"
    assert await a.submit("j3", "p3", max_waiting=2, claim_for=None, lease_seconds=60) == "busy"
    assert await b.submit("j1", "p1", max_waiting=2, claim_for=None, lease_seconds=60) == "known"
    assert await a.waiting() == 2
    claimed = await b.claim("w1", 60)
    assert claimed is not None and claimed.id == "j1"
    assert await a.waiting() == 1
    # j3 was not stored: it may come again now that there is room.
    assert await b.submit("j3", "p3", max_waiting=2, claim_for=None, lease_seconds=60) == "waiting"


async def test_submit_for_a_free_worker_claims_at_once(store: StateStore) -> None:
    """With claim_for the job is leased to that worker at once, first attempt, not waiting."""
    job = await store.submit("j1", "payload", max_waiting=0, claim_for="w1", lease_seconds=60)
    assert isinstance(job, Job)
    assert (job.id, job.payload, job.attempt) == ("j1", "payload", 1)
    assert await store.waiting() == 0
    assert await store.claim("w2", 60) is None


async def test_claim_order(store: StateStore) -> None:
    """Claims take the lease that ran out longest ago first, then waiting jobs oldest first.
    (Leases ending in the same millisecond go by submission in SQLite, by id in Redis.)"""
    for job_id in ("j1", "j2"):
        await store.submit(job_id, job_id, max_waiting=9, claim_for=None, lease_seconds=60)
    # A lease of 0 s has run out by the next call.
    for job_id in ("j3", "j4"):
        await store.submit(job_id, job_id, max_waiting=9, claim_for="gone", lease_seconds=0)
    order = [await store.claim("w", 60) for _ in range(5)]
    assert [job.id if job else None for job in order] == ["j3", "j4", "j1", "j2", None]
    assert [job.attempt for job in order if job] == [2, 2, 1, 1]


async def test_heartbeat_keeps_the_job(stores: list[StateStore]) -> None:
    """A job under a live lease is not claimed by another worker; its heartbeat succeeds."""
    a, b = stores
    job = await a.submit("j1", "p", max_waiting=9, claim_for="w1", lease_seconds=60)
    assert isinstance(job, Job)
    assert await a.heartbeat(job, 60) is True
    assert await b.claim("w2", 60) is None


async def test_expired_lease_is_reclaimed_and_fenced(
    stores: list[StateStore], later: Later
) -> None:
    """A lease not renewed is reclaimed (attempt 2, new token); the stale claim is fenced off;
    finish ends the job for everyone."""
    a, b = stores
    first = await a.submit("j1", "p", max_waiting=9, claim_for="w1", lease_seconds=0.3)
    assert isinstance(first, Job)
    second = await later.after(0.3, lambda: b.claim("w2", 60))
    assert (second.id, second.payload, second.attempt) == ("j1", "p", 2)
    assert second.token != first.token
    assert await a.heartbeat(first, 60) is False
    assert await a.begin_reply(first, 60) is False
    assert await b.heartbeat(second, 60) is True
    assert await b.begin_reply(second, 60) is True
    await b.finish(second)
    assert await a.claim("w3", 0) is None
    assert await b.heartbeat(second, 60) is False
    assert await b.begin_reply(second, 60) is False
    assert await a.submit("j1", "p", max_waiting=9, claim_for=None, lease_seconds=60) == "known"


async def test_a_replying_job_whose_worker_died_is_reclaimed(store: StateStore) -> None:
    """A worker that passed the fence and then stopped renewing loses the job like any other."""
    job = await store.submit("j1", "p", max_waiting=9, claim_for="w1", lease_seconds=60)
    assert isinstance(job, Job)
    assert await store.begin_reply(job, 0) is True
    again = await store.claim("w2", 60)
    assert again is not None and again.attempt == 2
    assert await store.begin_reply(job, 60) is False


async def test_report_names_the_store(store: StateStore) -> None:
    """report() proves the store takes writes and names its kind and version."""
    report = await store.report()
    assert report.kind in ("sqlite", "redis")
    assert report.version[0].isdigit()


# SQLite only ----------------------------------------------------------------------------------


async def test_sqlite_reopened_keeps_jobs(tmp_path: Path) -> None:
    """Jobs waiting or leased when the store closed are there after it reopens."""
    path = tmp_path / "state.db"
    store = SQLiteStore(path, app=APP)
    await store.submit("j1", "p1", max_waiting=9, claim_for=None, lease_seconds=60)
    leased = await store.submit("j2", "p2", max_waiting=9, claim_for="w1", lease_seconds=60)
    assert isinstance(leased, Job)
    await store.aclose()

    store = SQLiteStore(path, app=APP)
    try:
        assert await store.waiting() == 1
        assert await store.heartbeat(leased, 60) is True
        claimed = await store.claim("w2", 60)
        assert claimed is not None and claimed.id == "j1"
    finally:
        await store.aclose()


async def test_sqlite_finished_jobs_expire(tmp_path: Path) -> None:
    """A finished job is forgotten after its keeping time (the id may be submitted anew)."""
    clock = FakeClock()
    store = SQLiteStore(
        tmp_path / "state.db", app=APP, done_kept_seconds=0.2, purge_every_seconds=0.0, clock=clock
    )
    try:
        job = await store.submit("j1", "p", max_waiting=9, claim_for="w", lease_seconds=60)
        assert isinstance(job, Job)
        await store.finish(job)

        async def forgotten() -> bool | None:
            outcome = await store.submit("j1", "p", max_waiting=9, claim_for=None, lease_seconds=1)
            return True if outcome == "waiting" else None

        assert await forgotten() is None
        assert await Later(clock).after(0.2, forgotten)
    finally:
        await store.aclose()


_OPEN_SCRIPT = """
import sys
from pathlib import Path
from imgbot.state import StoreInUse
from imgbot.state.sqlite_store import SQLiteStore
from tests.processes import free_port
from tests.redis_server import RedisServer, answer_as_redis_6, redis_binary
try:
    SQLiteStore(Path(sys.argv[1]), app='imgbot:test:')
except StoreInUse as exc:
    print(exc, exc.pid)
    sys.exit(3)
print("opened")
"""


def _open_elsewhere(path: Path) -> subprocess.CompletedProcess[str]:
    """Try to open the store at ``path`` in another process."""
    return subprocess.run(
        [sys.executable, "-c", _OPEN_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_sqlite_second_process_is_refused(tmp_path: Path) -> None:
    """A second process opening the same file is refused, naming the file and the holder's pid."""
    path = tmp_path / "state.db"
    store = SQLiteStore(path, app=APP)
    try:
        done = _open_elsewhere(path)
        assert done.returncode == 3, done.stderr
        assert str(path) in done.stdout
        assert f"pid {os.getpid()}" in done.stdout
        assert done.stdout.split()[-1] == str(os.getpid())
    finally:
        asyncio.run(store.aclose())
    assert _open_elsewhere(path).stdout.strip() == "opened"


def test_sqlite_second_opener_in_one_process_is_refused(tmp_path: Path) -> None:
    """Even inside one process a second store on the file is refused (the lock is per open)."""
    path = tmp_path / "state.db"
    first = SQLiteStore(path, app=APP)
    try:
        with pytest.raises(StoreInUse, match="in use"):
            SQLiteStore(path, app=APP)
    finally:
        asyncio.run(first.aclose())


# Redis only -----------------------------------------------------------------------------------


async def test_redis_down_then_back(redis_server: RedisServer, redis_url: str) -> None:
    """Redis killed: StoreUnavailable within the timeout; restarted: the same store answers again
    and the append-only file kept the waiting and the leased job."""
    store = RedisStore.from_url(redis_url, "imgbot:test:", timeout=1.0)
    try:
        await store.submit("j1", "p1", max_waiting=9, claim_for=None, lease_seconds=60)
        leased = await store.submit("j2", "p2", max_waiting=9, claim_for="w1", lease_seconds=600)
        assert isinstance(leased, Job)
        redis_server.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"state store redis://127\.0\.0\.1:\d+/0"):
            await store.claim_message("m1", 60)
        assert time.monotonic() - started < 1.0 * 2
        redis_server.start()
        assert await store.waiting() == 1
        assert await store.heartbeat(leased, 60) is True
        claimed = await store.claim("w2", 60)
        assert claimed is not None and (claimed.id, claimed.payload) == ("j1", "p1")
    finally:
        await store.aclose()


async def test_redis_finished_jobs_expire(redis_url: str) -> None:
    """A finished job's hash expires after its keeping time (the id may be submitted anew)."""
    store = RedisStore.from_url(redis_url, "imgbot:test:", done_kept_seconds=0.2)
    try:
        job = await store.submit("j1", "p", max_waiting=9, claim_for="w", lease_seconds=60)
        assert isinstance(job, Job)
        await store.finish(job)

        async def forgotten() -> bool | None:
            outcome = await store.submit("j1", "p", max_waiting=9, claim_for=None, lease_seconds=1)
            return True if outcome == "waiting" else None

        assert await eventually(forgotten)
    finally:
        await store.aclose()


async def test_redis_hung_is_unavailable_after_the_timeout(
    redis_server: RedisServer, redis_url: str
) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP) costs one timeout, then
    StoreUnavailable."""
    store = RedisStore.from_url(redis_url, "imgbot:test:", timeout=0.5)
    assert redis_server.process is not None
    try:
        assert await store.claim_message("m0", 60) is True
        redis_server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="imeout"):
            await store.claim_message("m1", 60)
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 3.0
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
        await store.aclose()


async def test_redis_password_is_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A password in the URL appears in no error message, repr or log line; the right one works."""
    caplog.set_level(logging.DEBUG)
    password = "hunter2-state-secret"
    server = RedisServer(redis_binary(), tmp_path / "redis", password=password)
    server.start()
    try:
        right = RedisStore.from_url(server.url, "imgbot:test:", timeout=1.0)
        assert (await right.report()).kind == "redis"
        await right.aclose()
        wrong = f"redis://:{password}x@127.0.0.1:{server.port}/0"
        gone = f"redis://u:{password}@127.0.0.1:{free_port()}/0"
        for url in (wrong, gone):
            store = RedisStore.from_url(url, "imgbot:test:", timeout=1.0)
            try:
                with pytest.raises(StoreUnavailable) as caught:
                    await store.report()
            finally:
                await store.aclose()
            assert password not in str(caught.value) and password not in repr(store)
            assert "127.0.0.1" in str(caught.value)
    finally:
        server.stop()
    settings = load_settings(
        s3_access_key="a", s3_secret_key="b", state_url=f"rediss://:{password}@example.com:6380/2"
    )
    assert password not in repr(settings) and password not in str(settings.state_url)
    assert "rediss://example.com:6380/2" in repr(settings)
    assert settings.state_location == "rediss://example.com:6380/2"
    assert password in settings.secret_values()
    assert password not in caplog.text


async def test_rediss_speaks_tls(tmp_path: Path) -> None:
    """rediss:// reaches a TLS-only Redis, verifying its certificate (CA in the URL's query);
    plain redis:// to it fails as unavailable."""
    server = RedisServer(redis_binary(), tmp_path / "redis", tls=True)
    server.start()
    store = RedisStore.from_url(server.url, "imgbot:test:")
    plain = RedisStore.from_url(f"redis://127.0.0.1:{server.port}/0", "t:", timeout=0.5)
    try:
        assert (await store.report()).location == f"rediss://127.0.0.1:{server.port}/0"
        assert await store.claim_message("m", 60) is True
        assert await store.claim_message("m", 60) is False
        with pytest.raises(StoreUnavailable):  # plain text to the TLS port
            await plain.report()
    finally:
        await store.aclose()
        await plain.aclose()
        server.stop()


async def test_redis_older_than_7_is_refused() -> None:
    """report() refuses a server that says it is Redis 6, naming the version and what is needed."""
    server = await asyncio.start_server(answer_as_redis_6, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", "imgbot:test:")
    try:
        with pytest.raises(StoreUnavailable, match=r"Redis 6\.2\.14 is too old.*Redis 7"):
            await store.report()
    finally:
        await store.aclose()
        server.close()
        await server.wait_closed()


async def test_redis_keys_live_under_the_prefix(redis_url: str) -> None:
    """Two prefixes (two bots on one Redis) do not see each other's state."""
    one = RedisStore.from_url(redis_url, "imgbot:one:")
    two = RedisStore.from_url(redis_url, "imgbot:two:")
    try:
        assert await one.claim_message("m", 60) is True
        assert await two.claim_message("m", 60) is True
        await one.submit("j", "p", max_waiting=9, claim_for=None, lease_seconds=60)
        assert (await one.waiting(), await two.waiting()) == (1, 0)
        assert await two.claim("w", 60) is None
    finally:
        await one.aclose()
        await two.aclose()


async def test_sqlite_file_that_is_no_database_is_unavailable(tmp_path: Path) -> None:
    """A STATE_URL file that is not SQLite is StoreUnavailable naming it, and its lock is freed."""
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database at all, just text" * 100)
    with pytest.raises(StoreUnavailable, match=str(path)):
        SQLiteStore(path, app=APP)
    path.unlink()
    store = SQLiteStore(path, app=APP)  # the failed open left no lock behind
    await store.aclose()


# SQLite: the file, its neighbours and its owners -------------------------------------------------

# The file as imgbot wrote it before rows carried their bot.
_SCHEMA_BEFORE_APPS = """
CREATE TABLE messages (msg_id TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX messages_expires ON messages (expires);
CREATE TABLE rate_hits (user TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX rate_hits_user ON rate_hits (user, at);
CREATE INDEX rate_hits_expires ON rate_hits (expires);
CREATE TABLE rate_told (user TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX rate_told_until ON rate_told (until);
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'leased', 'replying', 'done')),
    token TEXT, attempt INTEGER NOT NULL DEFAULT 0, worker TEXT, lease_until REAL, finished REAL);
CREATE INDEX jobs_state_seq ON jobs (state, seq);
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state IN ('leased', 'replying');
CREATE INDEX jobs_finished ON jobs (finished) WHERE state = 'done';
CREATE TABLE probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
INSERT INTO jobs (id, payload, state) VALUES ('old-job', 'old-payload', 'waiting');
INSERT INTO messages (msg_id, expires) VALUES ('old-msg', 9e12);
"""


def _modes(folder: Path) -> dict[str, int]:
    """Each path under ``folder`` (relative) and its permission bits."""
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.lstat().st_mode)
        for path in sorted(folder.rglob("*"))
    }


async def test_sqlite_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Under umask 000 the folders imgbot makes are 0700, the file, -wal, -shm and lock 0600."""
    path = tmp_path / "made" / "by-imgbot" / "state.db"
    before = os.umask(0)
    try:
        store = SQLiteStore(path, app=APP)
        try:
            await store.submit(
                "j1", "secret prompt", max_waiting=9, claim_for=None, lease_seconds=1
            )
            modes = _modes(tmp_path)
        finally:
            await store.aclose()
    finally:
        os.umask(before)
    assert modes == {
        "made": 0o700,
        "made/by-imgbot": 0o700,
        "made/by-imgbot/state.db": 0o600,
        "made/by-imgbot/state.db-wal": 0o600,
        "made/by-imgbot/state.db-shm": 0o600,
        "made/by-imgbot/state.db.lock": 0o600,
    }


async def test_sqlite_file_made_readable_before_is_closed_again(tmp_path: Path) -> None:
    """A state file and lock left 0644 (an older imgbot) are 0600 once the bot opens them."""
    path = tmp_path / "state.db"
    for made in (path, tmp_path / "state.db.lock"):
        made.touch()
        made.chmod(0o644)
    store = SQLiteStore(path, app=APP)
    await store.aclose()
    assert _modes(tmp_path) == {"state.db": 0o600, "state.db.lock": 0o600}


def test_sqlite_lock_is_on_the_file_not_the_name(tmp_path: Path) -> None:
    """A second store reaching the file through a symlink is refused: one lock, beside the file."""
    real = tmp_path / "real" / "state.db"
    link = tmp_path / "link.db"
    first = SQLiteStore(real, app=APP)
    try:
        link.symlink_to(real)
        with pytest.raises(StoreInUse, match="in use"):
            SQLiteStore(link, app=APP)
        assert _open_elsewhere(link).returncode == 3
    finally:
        asyncio.run(first.aclose())
    assert not (tmp_path / "link.db.lock").exists()
    assert (tmp_path / "real" / "state.db.lock").is_file()


async def test_sqlite_apps_on_one_file_keep_their_rows_apart(tmp_path: Path) -> None:
    """Two DingTalk apps using one file in turn share no message, rate, job or claim."""
    path = tmp_path / "state.db"
    simulated = SQLiteStore(path, app="imgbot:imgbot-simulated:")
    try:
        assert await simulated.claim_message("m1", 3600) is True
        assert await simulated.rate("alice", 1, 60) == "allow"
        for job_id in ("j1", "j2"):
            await simulated.submit(
                job_id, "to 127.0.0.1", max_waiting=9, claim_for=None, lease_seconds=60
            )
        leased = await simulated.claim("w", 0)
        assert leased is not None
    finally:
        await simulated.aclose()

    real = SQLiteStore(path, app="imgbot:ding-real-app:")
    try:
        assert await real.waiting() == 0
        assert await real.claim("w", 60) is None  # neither the waiting nor the run-out job
        assert await real.claim_message("m1", 3600) is True
        assert await real.rate("alice", 1, 60) == "allow"
        assert await real.heartbeat(leased, 60) is False
        assert (
            await real.submit("j1", "p", max_waiting=9, claim_for=None, lease_seconds=60)
            == "waiting"
        )
        assert await real.waiting() == 1
    finally:
        await real.aclose()

    simulated = SQLiteStore(path, app="imgbot:imgbot-simulated:")
    try:
        assert await simulated.waiting() == 1
        assert await simulated.claim_message("m1", 3600) is False
        assert await simulated.rate("alice", 1, 60) == "tell"
        again = await simulated.claim("w", 60)
        assert again is not None and (again.id, again.payload, again.attempt) == (
            "j1",
            "to 127.0.0.1",
            2,
        )
    finally:
        await simulated.aclose()


async def test_sqlite_file_from_before_apps_is_upgraded_for_its_bot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file written before rows carried their bot keeps its jobs and claims for the first bot
    that opens it, which says in the log how many unfinished jobs it took; a second app sees
    none of them."""
    path = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA_BEFORE_APPS)
    caplog.set_level(logging.WARNING, logger="imgbot.state")
    store = SQLiteStore(path, app=APP)
    [said] = [r.getMessage() for r in caplog.records if "unfinished job" in r.getMessage()]
    assert said.startswith("state store: 1 unfinished job(s)") and APP in said
    try:
        assert await store.waiting() == 1
        assert await store.claim_message("old-msg", 60) is False
        job = await store.claim("w", 60)
        assert job is not None and (job.id, job.payload) == ("old-job", "old-payload")
    finally:
        await store.aclose()
    other = SQLiteStore(path, app="imgbot:other:")
    try:
        assert await other.claim_message("old-msg", 60) is True
        assert await other.claim("w", 60) is None
    finally:
        await other.aclose()


@pytest.mark.parametrize("what", ["text", "folder", "other-database", "other-wal", "garbage"])
def test_sqlite_leaves_what_is_not_its_file_alone(tmp_path: Path, what: str) -> None:
    """A STATE_URL naming a text file, a folder or another program's SQLite database is refused
    naming it; the file is left unchanged and nothing is made beside it."""
    path = tmp_path / "target"
    if what == "text":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    elif what == "folder":
        path.mkdir()
    elif what == "garbage":  # SQLite's header, then no database
        path.write_bytes(b"SQLite format 3\x00" + b"\x5a" * 4096)
    else:
        with contextlib.closing(sqlite3.connect(path)) as db:
            if what == "other-wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('x');")
    path.chmod(0o644 if path.is_file() else 0o755)
    content = path.read_bytes() if path.is_file() else b""
    with pytest.raises(StoreUnavailable, match=str(path)) as refused:
        SQLiteStore(path, app=APP)
    assert {
        "text": "not a SQLite database",
        "garbage": "not a SQLite database",
        "folder": "not a file",
    }.get(what, "not imgbot's") in str(refused.value)
    if path.is_file():
        assert path.read_bytes() == content
    assert stat.S_IMODE(path.stat().st_mode) == (0o644 if path.is_file() else 0o755)
    made = {p.name for p in tmp_path.iterdir()} - {"target"}
    assert made == set()


# Each sender's recent pictures per conversation (「我的图片」) --------------------------------


def _entry(n: int) -> ImageEntry:
    return ImageEntry(
        f"imagegen/2026/12/07/k{n}.png", f"imagegen/2026/12/07/k{n}.preview.jpg", f"p{n}"
    )


async def test_recent_images_are_the_owners_own_newest_first(stores: list[StateStore]) -> None:
    """Pictures are listed newest first, only the owner's in that conversation, within ``limit``;
    the same picture remembered twice is listed once."""
    day = 86_400.0
    for n in range(4):
        await stores[n % 2].remember_image("alice", "c1", _entry(n), keep=5, max_age_seconds=day)
    await stores[0].remember_image("alice", "c1", _entry(3), keep=5, max_age_seconds=day)
    await stores[1].remember_image("bob", "c1", _entry(10), keep=5, max_age_seconds=day)
    await stores[1].remember_image("alice", "c2", _entry(20), keep=5, max_age_seconds=day)
    await stores[1].remember_image("alice:c1", "", _entry(30), keep=5, max_age_seconds=day)
    mine = await stores[1].recent_images("alice", "c1", limit=3, max_age_seconds=day)
    assert [e.prompt for e in mine] == ["p3", "p2", "p1"]
    assert mine[0] == ImageEntry(_entry(3).key, _entry(3).preview_key, "p3", mine[0].made_at)
    assert mine[0].made_at >= mine[1].made_at > 0
    everything = await stores[0].recent_images("alice", "c1", limit=10, max_age_seconds=day)
    assert [e.prompt for e in everything] == ["p3", "p2", "p1", "p0"]
    assert [
        e.prompt for e in await stores[0].recent_images("bob", "c1", limit=9, max_age_seconds=day)
    ] == ["p10"]
    assert [
        e.prompt for e in await stores[0].recent_images("alice", "c2", limit=9, max_age_seconds=day)
    ] == ["p20"]
    assert await stores[0].recent_images("carol", "c1", limit=9, max_age_seconds=day) == []


async def test_recent_images_hold_one_entry_per_object_key(store: StateStore) -> None:
    """The same object recorded twice with different prompts is listed once, the first kept."""
    first, again = _entry(1), ImageEntry(_entry(1).key, _entry(1).preview_key, "another prompt")
    await store.remember_image("alice", "c1", first, keep=5, max_age_seconds=3600)
    await store.remember_image("alice", "c1", again, keep=5, max_age_seconds=3600)
    listed = await store.recent_images("alice", "c1", limit=10, max_age_seconds=3600)
    assert [(e.key, e.prompt) for e in listed] == [(first.key, "p1")]


async def test_recent_images_are_bounded_per_owner(store: StateStore) -> None:
    """Only the newest ``keep`` pictures of an owner in a conversation are kept."""
    for n in range(6):
        await store.remember_image("alice", "c1", _entry(n), keep=2, max_age_seconds=3600)
    kept = await store.recent_images("alice", "c1", limit=10, max_age_seconds=3600)
    assert [e.prompt for e in kept] == ["p5", "p4"]


async def test_recent_images_end_at_their_age(store: StateStore, later: Later) -> None:
    """A picture older than ``max_age_seconds`` is no longer listed (its object is gone)."""
    await store.remember_image("alice", "c1", _entry(1), keep=5, max_age_seconds=0.5)
    assert len(await store.recent_images("alice", "c1", limit=5, max_age_seconds=0.5)) == 1

    async def gone() -> bool | None:
        listed = await store.recent_images("alice", "c1", limit=5, max_age_seconds=0.5)
        return True if listed == [] else None

    assert await later.after(1.0, gone)


async def test_sqlite_file_of_schema_1_gains_the_picture_index(tmp_path: Path) -> None:
    """A state file from before the picture index keeps its jobs and gets the index at start."""
    path = tmp_path / "state.db"
    store = SQLiteStore(path, app=APP)
    await store.submit("j1", "payload", max_waiting=9, claim_for=None, lease_seconds=60)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("DROP TABLE images; PRAGMA user_version = 1;")
    store = SQLiteStore(path, app=APP)
    try:
        assert await store.waiting() == 1
        await store.remember_image("alice", "c1", _entry(1), keep=5, max_age_seconds=60)
        assert len(await store.recent_images("alice", "c1", limit=5, max_age_seconds=60)) == 1
    finally:
        await store.aclose()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
