"""The embedded state store: one SQLite file (WAL) owned by one bot process, no server.

One connection lives on one dedicated thread; every protocol call hops to it and runs as one
transaction (``BEGIN IMMEDIATE`` where it writes), so calls never interleave. An exclusive
``flock`` on ``<file>.lock`` held for the store's lifetime keeps a second bot process off the
file: leases only make sense when one process decides who works on what. Times come from the
store's ``clock``, by default this process's wall clock (``time.time``): a lease must survive a
restart, which monotonic time does not. Each bot's rows are its own (``app``, see
``sqlite_file``): two DingTalk apps using one file, one after the other, never see each other's
messages, rates or jobs.

A job row moves waiting -> leased -> (replying) -> done; a leased or replying row whose
``lease_until`` has passed is claimed again with a new token. Claimed msgIds, rate entries and
done jobs carry an expiry and are purged at most once a minute, at the start of a write that
is made anyway, through indexes on the expiry columns.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Literal, TypeVar
from urllib.parse import quote

from imgbot.state.base import (
    DONE_KEPT_SECONDS,
    ImageEntry,
    Job,
    StoreReport,
    StoreUnavailable,
    Verdict,
)
from imgbot.state.sqlite_file import (
    COUNT_WAITING,
    OLDEST_WAITING,
    RUN_OUT,
    adopt,
    inspect,
    lock,
    make_private,
    prepare,
    refuse_foreign,
)

T = TypeVar("T")
Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` gives them."""

PURGE_EVERY_SECONDS = 60.0


class SQLiteStore:
    """The ``StateStore`` in one SQLite file, for a single bot process."""

    def __init__(
        self,
        path: Path,
        *,
        app: str,
        timeout: float = 2.0,
        done_kept_seconds: float = DONE_KEPT_SECONDS,
        purge_every_seconds: float = PURGE_EVERY_SECONDS,
        clock: Clock = time.time,
        create: bool = True,
    ) -> None:
        """Open ``path`` for the bot named ``app`` and take its lock; raise StoreInUse or
        StoreUnavailable.

        ``create`` makes what is missing (folders, the file, its schema). Without it (doctor)
        nothing is made or changed but the probe row: a file that is not ready raises
        StoreNotReady, and the lock is taken only if a bot ever made it.
        """
        self.path = path
        self._app = app
        self._timeout = timeout
        self._done_kept = done_kept_seconds
        self._purge_every = purge_every_seconds
        self._clock = clock
        self._create = create
        try:
            if create:
                prepare(path)
            else:
                inspect(path)
            refuse_foreign(path)
            if create:
                make_private(path)
            self._lock_file: IO[str] | None = lock(path, create=create)
        except OSError as exc:
            raise StoreUnavailable(f"state store {path}: {exc.strerror or exc}") from None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgbot-state")
        self._db: sqlite3.Connection | None = None
        # Doctor (create=False) writes its probe row and nothing else: no purge.
        self._next_purge = 0.0 if create else math.inf
        try:
            self._executor.submit(self._guarded, self._connect).result()
        except BaseException:
            self._release()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # Plumbing -----------------------------------------------------------------------------

    def _connect(self) -> None:
        # mode=rw: SQLite never makes the file (prepare did, or doctor wants it as it is).
        uri = f"file:{quote(str(self.path.resolve()))}?mode=rw"
        db = sqlite3.connect(uri, timeout=self._timeout, isolation_level=None, uri=True)
        try:
            adopt(db, self.path, self._app, create=self._create)
            if self._create:
                db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a process crash (SIGKILL) without losing
            # commits; only a power cut may drop the last ones.
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        self._db = db

    def _guarded(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state store {self.path}: {exc}") from None

    async def _run(self, work: Callable[[sqlite3.Connection, float], T], *, write: bool) -> T:
        """Run ``work(db, now)`` on the store's thread as one transaction."""

        def transaction() -> T:
            db = self._db
            if db is None:
                raise StoreUnavailable(f"state store {self.path} is closed")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                now = self._clock()
                # Purged first, so what has expired is gone for this very call.
                if write and now >= self._next_purge:
                    self._purge(db, now)
                result = work(db, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return result

        if self._db is None:
            raise StoreUnavailable(f"state store {self.path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, transaction)

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM messages WHERE expires <= ?", (now,))
        db.execute("DELETE FROM rate_hits WHERE expires <= ?", (now,))
        db.execute("DELETE FROM rate_told WHERE until <= ?", (now,))
        db.execute("DELETE FROM images WHERE expires <= ?", (now,))
        db.execute(
            "DELETE FROM jobs WHERE state = 'done' AND finished <= ?", (now - self._done_kept,)
        )
        self._next_purge = now + self._purge_every

    # The protocol ---------------------------------------------------------------------------

    async def claim_message(self, msg_id: str, ttl_seconds: float) -> bool:
        """True for the first claim of ``msg_id`` within ``ttl_seconds``."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute(
                "INSERT INTO messages (app, msg_id, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (app, msg_id) "
                "DO UPDATE SET expires = excluded.expires WHERE messages.expires <= ?",
                (app, msg_id, now + ttl_seconds, now),
            )
            return cursor.rowcount == 1

        return await self._run(work, write=True)

    async def rate(self, user: str, limit: int, window_seconds: float) -> Verdict:
        """A sliding window of allowed messages; past the limit "tell" once a window."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> Verdict:
            if _in_window(db, app, user, now - window_seconds) < limit:
                db.execute(
                    "INSERT INTO rate_hits (app, user, at, expires) VALUES (?, ?, ?, ?)",
                    (app, user, now, now + window_seconds),
                )
                return "allow"
            told = db.execute(
                "SELECT 1 FROM rate_told WHERE app = ? AND user = ? AND until > ?", (app, user, now)
            ).fetchone()
            if told:
                return "quiet"
            db.execute(
                "INSERT INTO rate_told (app, user, until) VALUES (?, ?, ?) "
                "ON CONFLICT (app, user) DO UPDATE SET until = excluded.until",
                (app, user, now + window_seconds),
            )
            return "tell"

        return await self._run(work, write=True)

    async def rate_extra(self, user: str, wanted: int, limit: int, window_seconds: float) -> int:
        """The same sliding window as ``rate``: as many hits as still fit, up to ``wanted``."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> int:
            count = _in_window(db, app, user, now - window_seconds)
            granted = max(0, min(wanted, limit - count))
            db.executemany(
                "INSERT INTO rate_hits (app, user, at, expires) VALUES (?, ?, ?, ?)",
                [(app, user, now, now + window_seconds)] * granted,
            )
            return granted

        return await self._run(work, write=True)

    async def rate_give_back(self, user: str, hits: int) -> None:
        """Delete ``user``'s ``hits`` newest rate hits."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "DELETE FROM rate_hits WHERE rowid IN (SELECT rowid FROM rate_hits "
                "WHERE app = ? AND user = ? ORDER BY at DESC LIMIT ?)",
                (app, user, max(0, hits)),
            )

        await self._run(work, write=True)

    async def submit(
        self,
        job_id: str,
        payload: str,
        *,
        max_waiting: int,
        claim_for: str | None,
        lease_seconds: float,
    ) -> Job | Literal["waiting", "busy", "known"]:
        """Store the job: claimed at once for ``claim_for``, else waiting (or "busy")."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> Job | Literal["waiting", "busy", "known"]:
            if db.execute("SELECT 1 FROM jobs WHERE app = ? AND id = ?", (app, job_id)).fetchone():
                return "known"
            if claim_for is not None:
                token = secrets.token_hex(16)
                db.execute(
                    "INSERT INTO jobs "
                    "(app, id, payload, state, token, attempt, worker, lease_until) "
                    "VALUES (?, ?, ?, 'leased', ?, 1, ?, ?)",
                    (app, job_id, payload, token, claim_for, now + lease_seconds),
                )
                return Job(job_id, payload, token, 1)
            (waiting,) = db.execute(COUNT_WAITING, (app,)).fetchone()
            if waiting >= max_waiting:
                return "busy"
            db.execute(
                "INSERT INTO jobs (app, id, payload, state) VALUES (?, ?, ?, 'waiting')",
                (app, job_id, payload),
            )
            return "waiting"

        return await self._run(work, write=True)

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """The job whose lease ran out longest ago, else the oldest waiting one."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> Job | None:
            row = (
                db.execute(RUN_OUT, (app, now)).fetchone()
                or db.execute(OLDEST_WAITING, (app,)).fetchone()
            )
            if row is None:
                return None
            token = secrets.token_hex(16)
            payload, attempt = db.execute(
                "UPDATE jobs SET state = 'leased', token = ?, attempt = attempt + 1, worker = ?, "
                "lease_until = ? WHERE app = ? AND id = ? RETURNING payload, attempt",
                (token, worker, now + lease_seconds, app, row[0]),
            ).fetchone()
            return Job(row[0], payload, token, attempt)

        return await self._run(work, write=True)

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Renew the lease of the current claim; False when it is no longer ours."""
        return await self._renew(job, lease_seconds, "state")

    async def begin_reply(self, job: Job, lease_seconds: float) -> bool:
        """The final-reply fence: only the current claim of an unfinished job passes."""
        return await self._renew(job, lease_seconds, "'replying'")

    async def _renew(self, job: Job, lease_seconds: float, new_state: str) -> bool:
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute(
                f"UPDATE jobs SET state = {new_state}, lease_until = ? "  # noqa: S608 (two literals)
                "WHERE app = ? AND id = ? AND token = ? AND state IN ('leased', 'replying')",
                (now + lease_seconds, app, job.id, job.token),
            )
            return cursor.rowcount == 1

        return await self._run(work, write=True)

    async def finish(self, job: Job) -> None:
        """Mark the job done whoever holds it now: its reply was sent, so no one sends another."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "UPDATE jobs SET state = 'done', token = NULL, lease_until = NULL, finished = ? "
                "WHERE app = ? AND id = ? AND state != 'done'",
                (now, app, job.id),
            )

        await self._run(work, write=True)

    async def waiting(self) -> int:
        """How many jobs wait for a worker."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> int:
            del now
            (count,) = db.execute(COUNT_WAITING, (app,)).fetchone()
            return int(count)

        return await self._run(work, write=False)

    async def remember_image(
        self,
        owner: str,
        conversation: str,
        entry: ImageEntry,
        *,
        keep: int,
        max_age_seconds: float,
    ) -> None:
        """Add the picture once, then drop what is too old or beyond the newest ``keep``."""
        who = (self._app, owner, conversation)

        def work(db: sqlite3.Connection, now: float) -> None:
            # A later entry is always the newer one, even within one tick of the clock.
            (newest,) = db.execute(
                "SELECT MAX(made) FROM images WHERE app = ? AND owner = ? AND conversation = ?",
                who,
            ).fetchone()
            made = now if newest is None or newest < now else newest + 0.001
            db.execute(
                "INSERT INTO images "
                "(app, owner, conversation, key, preview_key, prompt, made, expires) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*who, entry.key, entry.preview_key, entry.prompt, made, made + max_age_seconds),
            )
            db.execute(
                "DELETE FROM images WHERE app = ? AND owner = ? AND conversation = ? AND ("
                "made <= ? OR key NOT IN (SELECT key FROM images "
                "WHERE app = ? AND owner = ? AND conversation = ? "
                "ORDER BY made DESC, key DESC LIMIT ?))",
                (*who, now - max_age_seconds, *who, keep),
            )

        await self._run(work, write=True)

    async def recent_images(
        self, owner: str, conversation: str, *, limit: int, max_age_seconds: float
    ) -> list[ImageEntry]:
        """The newest pictures younger than ``max_age_seconds``, newest first."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> list[ImageEntry]:
            rows = db.execute(
                "SELECT key, preview_key, prompt, made FROM images "
                "WHERE app = ? AND owner = ? AND conversation = ? AND made > ? "
                "ORDER BY made DESC, key DESC LIMIT ?",
                (app, owner, conversation, now - max_age_seconds, limit),
            ).fetchall()
            return [ImageEntry(*row) for row in rows]

        return await self._run(work, write=False)

    async def report(self) -> StoreReport:
        """Prove the file takes writes; name it and SQLite's version."""
        app = self._app

        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("INSERT OR REPLACE INTO probe (app, at) VALUES (?, ?)", (app, now))

        await self._run(work, write=True)
        return StoreReport("sqlite", str(self.path), sqlite3.sqlite_version)

    async def aclose(self) -> None:
        """Close the connection, stop the thread, release the lock."""
        if self._db is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_db)
        self._release()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _release(self) -> None:
        self._executor.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _in_window(db: sqlite3.Connection, app: str, user: str, since: float) -> int:
    """``user``'s rate hits after ``since``, the older ones deleted first."""
    db.execute("DELETE FROM rate_hits WHERE app = ? AND user = ? AND at <= ?", (app, user, since))
    (count,) = db.execute(
        "SELECT COUNT(*) FROM rate_hits WHERE app = ? AND user = ?", (app, user)
    ).fetchone()
    return int(count)
