"""Choosing the state store: STATE_URL (validated at load) becomes a SQLite or a Redis store."""

from __future__ import annotations

from imgbot.config.settings import Settings
from imgbot.state.base import StateStore
from imgbot.state.sqlite_store import SQLiteStore


def key_prefix(client_id: str) -> str:
    """The name of one bot's state, ``imgbot:<AppKey>:``: the prefix of its Redis keys and the
    ``app`` of its SQLite rows, so two bots sharing a Redis or a file never see each other's
    state."""
    return f"imgbot:{client_id}:"


def open_store(settings: Settings, prefix: str, *, create: bool = True) -> StateStore:
    """The store STATE_URL names, holding the state of the bot named ``prefix``
    (``imgbot:<client id>:``): Redis keys live under it, SQLite rows carry it.

    SQLite takes its file's lock here, so a second bot on the same file stops at start
    (StoreInUse); without ``create`` (doctor) it makes nothing (StoreNotReady when the bot
    would). Redis connects on first use.
    """
    if settings.state_file is not None:
        return SQLiteStore(
            settings.state_file,
            app=prefix,
            timeout=settings.state_timeout_seconds,
            create=create,
        )
    # state_file is None only when STATE_URL names Redis.
    url = settings.state_url.get_secret_value() if settings.state_url else ""
    # Imported here: a bot on the embedded store never loads redis-py.
    from imgbot.state.redis_store import RedisStore

    return RedisStore.from_url(url, prefix, timeout=settings.state_timeout_seconds)
