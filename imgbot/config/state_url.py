"""What STATE_URL may say, where its SQLite file lives, and how it is shown without its password.

The forms are SQLAlchemy's for SQLite (``sqlite:////abs/path.db``, four slashes: an absolute path;
``sqlite:///relative.db``, relative to the working directory) and redis-py's for Redis
(``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS). Nothing else is accepted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

DEFAULT_FILE = "state.db"
DEFAULT_FOLDER = ".data"
REDIS_SCHEMES = ("redis", "rediss")


def shown_url(value: str) -> str:
    """``value`` safe to show: a Redis URL's password and query removed, a SQLite URL as is."""
    scheme, _, rest = value.partition("://")
    if scheme == "sqlite":
        return value
    # Split by hand: a password may hold "/", "?" or "#", which urlsplit reads as the path.
    userinfo, at, location = rest.rpartition("@")
    user = userinfo.partition(":")[0] if at and "/" not in userinfo.partition(":")[0] else ""
    location = re.split(r"[?#]", location, maxsplit=1)[0]
    if scheme not in REDIS_SCHEMES:
        return f"{scheme}://{location}" if at else re.split(r"[?#]", value, maxsplit=1)[0]
    return f"{scheme}://{user + '@' if user else ''}{location}"


class SecretUrl(SecretStr):
    """A URL that may carry a password: ``str``/``repr`` show it with the password removed."""

    def _display(self) -> str:
        return shown_url(self.get_secret_value())


def check_state_url(value: str) -> str:
    """``value`` if it is a STATE_URL imgbot can use, else ValueError (never quoting a password)."""
    shown = shown_url(value)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"must not hold spaces or control characters: {shown!r}")
    parts = urlsplit(value)
    if parts.scheme == "sqlite":
        if parts.netloc or parts.path.endswith("/") or not parts.path or "?" in value:
            raise ValueError(
                "a SQLite URL is sqlite:////absolute/path.db or sqlite:///relative.db, "
                f"got {shown!r}"
            )
        return value
    if parts.scheme in REDIS_SCHEMES:
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"has an invalid port: {shown!r}") from None
        if not parts.hostname or port == 0:
            raise ValueError(f"a Redis URL is redis://host:port/db, got {shown!r}")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(f"the Redis database is a number (redis://host:port/0), got {shown!r}")
        return value
    raise ValueError(
        "must be sqlite:////absolute/path.db, sqlite:///relative.db, redis://host:port/db or "
        f"rediss://host:port/db, got {shown!r}"
    )


def sqlite_path(value: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The SQLite file STATE_URL names (None for Redis).

    Unset: ``$STATE_DIRECTORY/state.db`` when systemd set STATE_DIRECTORY (the unit's
    StateDirectory=), else ``.data/state.db`` under the working directory.
    """
    env = os.environ if environ is None else environ
    if value is None:
        # systemd may list several directories separated by ':'; the first is ours.
        folder = env.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(folder or DEFAULT_FOLDER).absolute() / DEFAULT_FILE
    parts = urlsplit(value)
    if parts.scheme != "sqlite":
        return None
    # sqlite:///relative.db has path "/relative.db", sqlite:////abs.db has "//abs.db".
    return Path(parts.path[1:]).absolute()
