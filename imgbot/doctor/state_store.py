"""Doctor's state store check: does the store STATE_URL names answer, take writes, and (Redis) run
version 7 or later? A SQLite file locked by the running bot is fine: that is the bot using it.

Doctor makes nothing: a SQLite file that is missing, empty or from an older imgbot is reported as
the bot would treat it, and only a file that is already imgbot's gets the probe row."""

from __future__ import annotations

import asyncio
from sqlite3 import sqlite_version

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check
from imgbot.state import (
    StoreInUse,
    StoreNotReady,
    StoreReport,
    StoreUnavailable,
    key_prefix,
    open_store,
)

NAME = "state store"


def store(settings: Settings) -> Check:
    """Open the store without making anything, write a probe, report its kind and version."""
    named = _named(settings)
    try:
        report = asyncio.run(_report(settings))
    except StoreInUse as exc:
        pid = f", pid {exc.pid}" if exc.pid else ""
        return Check(NAME, True, f"{named}: in use by the running bot{pid}")
    except StoreNotReady as exc:
        return Check(NAME, True, f"{named}: {_reason(settings, exc)} (SQLite {sqlite_version})")
    except StoreUnavailable as exc:
        return Check(NAME, False, f"{named}: {_reason(settings, exc)}", _fix(settings))
    kind = "SQLite" if report.kind == "sqlite" else "Redis"
    return Check(NAME, True, f"{named}: {kind} {report.version}, takes writes")


def _reason(settings: Settings, exc: StoreUnavailable) -> str:
    """The store's message without the store's name (the check names it once)."""
    where = str(settings.state_file or settings.state_location)
    return str(exc).removeprefix(f"state store {where}").removeprefix(": ")


async def _report(settings: Settings) -> StoreReport:
    prefix = key_prefix(settings.dingtalk_client_id or "simulator")
    state = open_store(settings, prefix, create=False)
    try:
        return await state.report()
    finally:
        await state.aclose()


def _named(settings: Settings) -> str:
    if settings.state_url is None:
        return f"STATE_URL unset, {settings.state_location}"
    return f"STATE_URL={settings.state_location}"


def _fix(settings: Settings) -> str:
    if settings.state_file is not None:
        return (
            "STATE_URL must name imgbot's own SQLite file (or a new one) in a folder the bot's "
            "user may write; or set STATE_URL=redis://..."
        )
    return (
        "start Redis 7 or later (or Valkey), check STATE_URL's host, port, password and TLS, "
        "and STATE_TIMEOUT_SECONDS"
    )
