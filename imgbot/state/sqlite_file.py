"""The embedded store's file: what makes a file ours, its schema, the queries that pick the next
job, and the lock that keeps one bot process on it.

The file and everything beside it (``-wal``, ``-shm``, ``.lock``) are readable by their owner
only (0600), and folders imgbot makes for it are 0700, whatever the umask: jobs hold prompts,
staff and conversation ids and session webhooks. SQLite gives ``-wal`` and ``-shm`` the mode of
the database file. The lock is ``flock`` on ``<resolved file>.lock`` (one lock however the file
is reached, through symlinks or not), released by the kernel when the process dies, so a crashed
bot never leaves a stale lock behind.

Several bots (DingTalk apps) may use one file, one after the other: every row carries its bot's
name (``app``, the same ``imgbot:<AppKey>:`` that prefixes its Redis keys) and every query reads
only its own bot's rows. A file is ours when SQLite's header holds imgbot's application id; a
file from before that (no application id, imgbot's tables without ``app``) is upgraded once, its
rows given to the first bot that opens it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import IO, Literal
from urllib.parse import quote

from imgbot.state.base import StoreInUse, StoreNotReady, StoreUnavailable

log = logging.getLogger(__name__)

APPLICATION_ID = 0x696D6762
"""``PRAGMA application_id`` of an imgbot state file ("imgb")."""
SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the schema below (``UPGRADES`` brings older files to it)."""
SQLITE_HEADER = b"SQLite format 3\x00"
FILE_MODE = 0o600
FOLDER_MODE = 0o700

SCHEMA = [
    "CREATE TABLE messages (app TEXT NOT NULL, msg_id TEXT NOT NULL, expires REAL NOT NULL, "
    "PRIMARY KEY (app, msg_id)) WITHOUT ROWID",
    "CREATE INDEX messages_expires ON messages (expires)",
    "CREATE TABLE rate_hits ("
    "app TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL)",
    "CREATE INDEX rate_hits_user ON rate_hits (app, user, at)",
    "CREATE INDEX rate_hits_expires ON rate_hits (expires)",
    "CREATE TABLE rate_told (app TEXT NOT NULL, user TEXT NOT NULL, until REAL NOT NULL, "
    "PRIMARY KEY (app, user)) WITHOUT ROWID",
    "CREATE INDEX rate_told_until ON rate_told (until)",
    """CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'leased', 'replying', 'done')),
    token TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    finished REAL,
    UNIQUE (app, id))""",
    "CREATE INDEX jobs_state_seq ON jobs (app, state, seq)",
    "CREATE INDEX jobs_lease ON jobs (app, lease_until) WHERE state IN ('leased', 'replying')",
    "CREATE INDEX jobs_finished ON jobs (finished) WHERE state = 'done'",
    "CREATE TABLE probe (app TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID",
]
# Schema 2: each sender's recent pictures per conversation (「我的图片」).
_IMAGES = [
    "CREATE TABLE images (app TEXT NOT NULL, owner TEXT NOT NULL, conversation TEXT NOT NULL, "
    "key TEXT NOT NULL, preview_key TEXT NOT NULL, prompt TEXT NOT NULL, made REAL NOT NULL, "
    "expires REAL NOT NULL, PRIMARY KEY (app, owner, conversation, key)) WITHOUT ROWID",
    "CREATE INDEX images_recent ON images (app, owner, conversation, made)",
    "CREATE INDEX images_expires ON images (expires)",
]
SCHEMA += _IMAGES
UPGRADES = {1: _IMAGES}
"""The statements that bring a file of schema N to N + 1."""

# The file before rows carried their bot: these tables and indexes, without ``app``.
_LEGACY_TABLES = ("messages", "rate_hits", "rate_told", "jobs", "probe")
_LEGACY_INDEXES = (
    "messages_expires",
    "rate_hits_user",
    "rate_hits_expires",
    "rate_told_until",
    "jobs_state_seq",
    "jobs_lease",
    "jobs_finished",
)
_LEGACY_COPY = (
    "INSERT INTO messages (app, msg_id, expires) SELECT ?, msg_id, expires FROM legacy_messages",
    "INSERT INTO rate_hits (app, user, at, expires) "
    "SELECT ?, user, at, expires FROM legacy_rate_hits",
    "INSERT INTO rate_told (app, user, until) SELECT ?, user, until FROM legacy_rate_told",
    "INSERT INTO jobs "
    "(seq, app, id, payload, state, token, attempt, worker, lease_until, finished) "
    "SELECT seq, ?, id, payload, state, token, attempt, worker, lease_until, finished "
    "FROM legacy_jobs",
)

RUN_OUT = (
    "SELECT id FROM jobs WHERE app = ? AND state IN ('leased', 'replying') AND lease_until <= ? "
    "ORDER BY lease_until, seq LIMIT 1"
)
OLDEST_WAITING = "SELECT id FROM jobs WHERE app = ? AND state = 'waiting' ORDER BY seq LIMIT 1"
COUNT_WAITING = "SELECT COUNT(*) FROM jobs WHERE app = ? AND state = 'waiting'"


# Before SQLite opens the file -----------------------------------------------------------------


def prepare(path: Path) -> None:
    """Make ``path`` ready for SQLite: missing folders made 0700, a missing file made 0600;
    refuse what is not a regular, SQLite or empty file (changing nothing about it).

    Raises StoreUnavailable (or OSError) before anything is made for a path that cannot be ours.
    """
    if path.exists():
        _check_regular(path)
    else:
        _make_folders(path.parent)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        _check_header(path, os.pread(descriptor, len(SQLITE_HEADER), 0))
        _owner_only(descriptor, created=True)
    finally:
        os.close(descriptor)


def make_private(path: Path) -> None:
    """Make the file and any ``-wal``/``-shm`` left beside it 0600 (an older imgbot made them
    0644): call once the file is known to be ours."""
    resolved = path.resolve()
    for name in (resolved.name, resolved.name + "-wal", resolved.name + "-shm"):
        try:
            descriptor = os.open(resolved.with_name(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            _owner_only(descriptor)
        finally:
            os.close(descriptor)


def inspect(path: Path) -> None:
    """Check, making and changing nothing, that ``path`` can be opened as it is (doctor).

    Raises StoreNotReady when the bot would make the file (missing or empty) in a folder it can
    write, StoreUnavailable for a path that is no SQLite file or cannot be made.
    """
    if not path.exists():
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise StoreUnavailable(f"state store {path}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"state store {path}: {folder} is not writable")
        raise StoreNotReady(f"state store {path}: not made yet; the bot makes it at start")
    _check_regular(path)
    with path.open("rb") as handle:
        _check_header(path, handle.read(len(SQLITE_HEADER)))


def refuse_foreign(path: Path) -> None:
    """Raise StoreUnavailable, before any lock is made beside it, for a SQLite file that is not
    imgbot's (another program's tables or application id, a newer schema). Read-only; a file
    SQLite cannot read yet is left for the open that follows to judge."""
    real = path.resolve()
    # immutable: SQLite then makes no -wal/-shm beside a file it only looks at; not while a
    # write-ahead log exists, whose pages it would otherwise ignore.
    wal = real.with_name(real.name + "-wal").exists()
    uri = f"file:{quote(str(real))}?mode=ro" + ("" if wal else "&immutable=1")
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            _kind(db, path)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreUnavailable(
                f"state store {path}: not a SQLite database (imgbot leaves it be)"
            ) from None
    except sqlite3.Error:
        return


def _check_regular(path: Path) -> None:
    if not stat.S_ISREG(path.stat().st_mode):
        raise StoreUnavailable(f"state store {path}: not a file")


def _check_header(path: Path, header: bytes) -> None:
    if header and header != SQLITE_HEADER:
        raise StoreUnavailable(f"state store {path}: not a SQLite database (imgbot leaves it be)")


def _make_folders(folder: Path) -> None:
    """Make ``folder`` and its missing parents, each 0700 whatever the umask."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for one in reversed(missing):
        one.mkdir(mode=FOLDER_MODE)
        os.chmod(one, FOLDER_MODE)


def _owner_only(descriptor: int, *, created: bool = False) -> None:
    """Make an open file 0600 if it is ours and not 0600 yet (a file from before). With
    ``created`` only a file just made (empty) is changed: the umask may have cut its mode."""
    info = os.fstat(descriptor)
    if created and info.st_size:
        return
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.fchmod(descriptor, FILE_MODE)


# The lock ------------------------------------------------------------------------------------


def lock(path: Path, *, create: bool = True) -> IO[str] | None:
    """Hold ``<resolved path>.lock`` exclusively (made 0600), or raise StoreInUse naming the
    holder's pid. Without ``create`` a missing lock file is left missing (no bot ever held the
    file; None)."""
    resolved = path.resolve()
    lock_path = resolved.with_name(resolved.name + ".lock")
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(lock_path, flags, FILE_MODE)
    except FileNotFoundError:
        if create:
            raise
        return None
    handle = os.fdopen(descriptor, "r+", encoding="ascii")
    try:
        if create:
            _owner_only(descriptor)
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        pid = int(holder) if holder.isdigit() else None
        raise StoreInUse(
            f"state store {path} is in use by another imgbot process"
            + (f" (pid {pid})" if pid else "")
            + "; one bot process per SQLite file (set STATE_URL=redis://... to run several)",
            pid=pid,
        ) from None
    except BaseException:
        handle.close()
        raise
    if create:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    return handle


# Once SQLite has it --------------------------------------------------------------------------


def adopt(db: sqlite3.Connection, path: Path, app: str, *, create: bool) -> None:
    """Make the open file imgbot's current schema (new or from before), or refuse it.

    Without ``create`` (doctor) nothing is written: a file that is not yet or not fully ours
    raises StoreNotReady (the bot would set it up) or StoreUnavailable (it would refuse it).
    """
    kind = _kind(db, path)
    if kind == "ours":
        return
    if not create:
        what = "empty" if kind == "new" else "from an older imgbot"
        raise StoreNotReady(f"state store {path}: {what}; the bot sets it up at start")
    db.execute("BEGIN IMMEDIATE")
    try:
        if kind == "older":
            _upgrade(db)
        else:
            _set_up(db, kind, app)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _kind(db: sqlite3.Connection, path: Path) -> Literal["ours", "older", "new", "legacy"]:
    """What the file is: ours, ours of an older schema, new (no tables), from before rows carried
    their bot; or refused."""
    (application_id,) = db.execute("PRAGMA application_id").fetchone()
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    if application_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"state store {path}: written by a newer imgbot (schema {version}); upgrade imgbot"
            )
        return "older" if version < SCHEMA_VERSION else "ours"
    if application_id != 0:
        raise StoreUnavailable(f"state store {path}: another program's SQLite database")
    if not tables:
        return "new"
    if tables == set(_LEGACY_TABLES):
        return "legacy"
    raise StoreUnavailable(f"state store {path}: holds tables that are not imgbot's")


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a file of an older schema to ``SCHEMA_VERSION``, keeping every row."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    for step in range(version, SCHEMA_VERSION):
        for statement in UPGRADES[step]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _set_up(db: sqlite3.Connection, kind: Literal["new", "legacy"], app: str) -> None:
    """Write the current schema; a file from before keeps its rows, given to ``app``."""
    if kind == "legacy":
        for index in _LEGACY_INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {index}")
        for table in _LEGACY_TABLES:
            db.execute(f"ALTER TABLE {table} RENAME TO legacy_{table}")
    for statement in SCHEMA:
        db.execute(statement)
    if kind == "legacy":
        for copy in _LEGACY_COPY:
            db.execute(copy, (app,))
        for table in _LEGACY_TABLES:
            db.execute(f"DROP TABLE legacy_{table}")
        (unfinished,) = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE app = ? AND state != 'done'", (app,)
        ).fetchone()
        if unfinished:
            # The rows of a file from before name no app: the first to open it takes them. Say
            # so, since they may be another app's (the simulator's, before real credentials).
            log.warning(
                "state store: %d unfinished job(s) from before apps were kept apart now belong "
                "to %s and will be answered by it",
                unfinished,
                app,
            )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
