"""The ``.env`` file as a settings source: read it as UTF-8 or say exactly where it is not."""

from __future__ import annotations

import io
from pathlib import Path

from dotenv import dotenv_values

from imgbot.errors import ConfigError

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
