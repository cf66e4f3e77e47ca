"""The ``.env`` file and the environment as settings sources: reading ``.env`` as UTF-8 (or saying
exactly where it is not), once per command, and naming keys that look like settings but are none."""

from __future__ import annotations

import difflib
import io
from collections.abc import Collection, Mapping
from pathlib import Path

from dotenv import dotenv_values

from imgbot.errors import ConfigError

EnvFile = Mapping[str, str | None]
"""The keys and values of a ``.env`` file as read (a key without ``=`` has the value None)."""

ENV_FILE = Path(".env")
# Windows editors save UTF-8 with a byte-order mark; without "-sig" the first key would silently
# be named "\ufeffKEY" and never read.
ENCODING = "utf-8-sig"


def read_env_file(path: Path = ENV_FILE) -> dict[str, str | None]:
    """The keys and values of ``path`` ({} when there is none).

    Raises ConfigError naming the file when it cannot be read or is not UTF-8 (with the byte's
    offset and line, so the one bad comment can be found).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode(ENCODING)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            str(path),
            f"is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the file as UTF-8",
        ) from None
    return dotenv_values(stream=io.StringIO(text))


def unknown_keys(
    known: Collection[str],
    prefixes: tuple[str, ...],
    environ: Mapping[str, str],
    env_file: EnvFile,
    path: Path = ENV_FILE,
) -> list[str]:
    """One line per key of ``environ`` or ``env_file`` (read from ``path``) that starts with one of
    ``prefixes`` but is not ``known``, naming where it is and the closest known key (keys compare
    case-insensitively, as settings are read)."""
    found = {key.upper(): "the environment" for key in environ}
    found |= {key.upper(): path.name for key in env_file}
    lines = []
    for key, where in sorted(found.items()):
        if key in known or not key.startswith(prefixes):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{key} (in {where}) is not an imgbot setting and is ignored{hint}")
    return lines
