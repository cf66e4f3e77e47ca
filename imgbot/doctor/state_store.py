"""Doctor's state store check: does the store STATE_URL names answer, take writes, and (Redis) run
version 7 or later? A SQLite file locked by the running bot is fine: that is the bot using it."""

from __future__ import annotations

import asyncio

from imgbot.config.settings import Settings
from imgbot.doctor.check import Check
from imgbot.state import StoreInUse, StoreReport, StoreUnavailable, key_prefix, open_store

NAME = "state store"


def store(settings: Settings) -> Check:
    """Open the store as the bot would, write a probe, report its kind and version."""
    named = _named(settings)
    try:
        report = asyncio.run(_report(settings))
    except StoreInUse as exc:
        pid = f", pid {exc.pid}" if exc.pid else ""
        return Check(NAME, True, f"{named}: in use by the running bot{pid}")
    except StoreUnavailable as exc:
        # The store's message names it too; say where once.
        where = str(settings.state_file or settings.state_location)
        reason = str(exc).removeprefix(f"state store {where}").removeprefix(": ")
        return Check(NAME, False, f"{named}: {reason}", _fix(settings))
    kind = "SQLite" if report.kind == "sqlite" else "Redis"
    return Check(NAME, True, f"{named}: {kind} {report.version}, takes writes")


async def _report(settings: Settings) -> StoreReport:
    state = open_store(settings, key_prefix(settings.dingtalk_client_id or "simulator"))
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
        return "check that the folder exists and the bot's user may write it (or set STATE_URL)"
    return (
        "start Redis 7 or later (or Valkey), check STATE_URL's host, port, password and TLS, "
        "and STATE_TIMEOUT_SECONDS"
    )
