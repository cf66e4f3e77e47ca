"""Logging set-up: one line per record, quiet third-party loggers, redaction as a last defence.

imgbot's own log lines carry keys, message ids and durations, never credentials or signed URLs.
The formatter also guards against libraries and tracebacks that might print them: it removes every
known secret value and the values of credential-bearing query parameters. Log lines also carry text
from outside (provider ids and errors, user text, file names): the formatter shows control, line
separator and bidi characters escaped, so such text can neither forge a record nor hide one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

# Query parameters that carry credentials: presigned S3 links, the stream ticket, webhook sessions.
_SENSITIVE_QUERY = re.compile(
    r"([?&](?:X-Amz-[A-Za-z-]+|ticket|session|access_token|accessToken|Signature|sign)=)"
    r"[^\s&\"')]*"
)
# Cc (C0, DEL, C1 such as NEL), line and paragraph separators, and bidi embeddings, overrides,
# isolates and marks: what can end a line, move the cursor or reorder what a reader sees.
_UNSAFE = r"\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(rf"[\x00-\x1f{_UNSAFE}]")
_CONTROLS_BUT_NEWLINE = re.compile(rf"[\x00-\x09\x0b-\x1f{_UNSAFE}]")
# botocore logs request headers (Authorization) at DEBUG; these stay at WARNING whatever LOG_LEVEL.
_NOISY = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "websockets",
    "aiohttp.access",
    "dingtalk_stream",
    "PIL",
)


def escape_controls(text: str) -> str:
    """``text`` with control, line separator and bidi characters as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROLS.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _continuation(text: str) -> str:
    """A traceback kept on several lines, each indented: only a record's first line is flush."""
    lines = _CONTROLS_BUT_NEWLINE.sub(_escaped, text).split("\n")
    return "\n".join("  " + line for line in lines)


class RedactingFormatter(logging.Formatter):
    """Formats each record on one line (tracebacks follow, indented), then removes secrets and
    credential-bearing query values.

    Escaping the formatted message covers the message and its arguments in one place; working on
    the whole text for redaction covers tracebacks too.
    """

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, escaped and redacted."""
        return self.redact(super().format(record))

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The record's line with every control character escaped."""
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        """The traceback, multi-line but indented and with other controls escaped."""
        return _continuation(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        """The stack of ``stack_info=True``, like a traceback."""
        return _continuation(super().formatStack(stack_info))

    def redact(self, text: str) -> str:
        """``text`` without known secrets or credential query values."""
        text = _SENSITIVE_QUERY.sub(r"\1<redacted>", text)
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level`` with redaction; third-party chatter at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
