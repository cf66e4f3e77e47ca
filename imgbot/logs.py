"""Logging set-up: one format, quiet third-party loggers, and redaction as a last line of defence.

imgbot's own log lines carry keys, message ids and durations, never credentials or signed URLs.
The redacting formatter also guards against libraries and tracebacks that might print them: it
removes every known secret value and the values of credential-bearing query parameters.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Query parameters that carry credentials: presigned S3 links, the stream ticket, webhook sessions.
_SENSITIVE_QUERY = re.compile(
    r"([?&](?:X-Amz-[A-Za-z-]+|ticket|session|access_token|accessToken|Signature|sign)=)"
    r"[^\s&\"')]*"
)
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


class RedactingFormatter(logging.Formatter):
    """Formats records, then removes secrets and credential-bearing query values.

    Working on the formatted text covers messages, arguments and tracebacks alike.
    """

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, redacted."""
        return self.redact(super().format(record))

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
