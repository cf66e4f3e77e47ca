"""The embedded store's file: its schema, the queries that pick the next job, and the lock that
keeps one bot process on it (``flock`` on ``<file>.lock``, released by the kernel when the process
dies, so a crashed bot never leaves a stale lock behind)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from imgbot.state.base import StoreInUse

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    msg_id TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires);
CREATE TABLE IF NOT EXISTS rate_hits (
    user TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_hits_user ON rate_hits (user, at);
CREATE INDEX IF NOT EXISTS rate_hits_expires ON rate_hits (expires);
CREATE TABLE IF NOT EXISTS rate_told (
    user TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_told_until ON rate_told (until);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'leased', 'replying', 'done')),
    token TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until REAL,
    finished REAL);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_until) WHERE state IN ('leased', 'replying');
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished) WHERE state = 'done';
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""

RUN_OUT = (
    "SELECT id FROM jobs WHERE state IN ('leased', 'replying') AND lease_until <= ? "
    "ORDER BY lease_until, seq LIMIT 1"
)
OLDEST_WAITING = "SELECT id FROM jobs WHERE state = 'waiting' ORDER BY seq LIMIT 1"
COUNT_WAITING = "SELECT COUNT(*) FROM jobs WHERE state = 'waiting'"


def lock(path: Path) -> IO[str]:
    """Hold ``<path>.lock`` exclusively, or raise StoreInUse naming the holder's pid."""
    lock_path = path.with_name(path.name + ".lock")
    handle = lock_path.open("a+", encoding="ascii")
    try:
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
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
