"""Logging set-up: one format, quiet third-party loggers, and redaction as a last line of defence.

imgbot's own log lines carry keys, message ids and durations, never credentials or signed URLs.
The redacting filter also guards against libraries that might print them: it removes every known
secret value and the signature part of any presigned URL from every record.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_SIGNED_QUERY = re.compile(r"\?[^\s\"')]*X-Amz-(?:Signature|Credential)=[^\s\"')]*")
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


class RedactingFilter(logging.Filter):
    """Replaces secrets and presigned query strings in log records."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

    def redact(self, text: str) -> str:
        """``text`` without secrets or signed query strings."""
        text = _SIGNED_QUERY.sub("?<signed>", text)
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level`` with redaction; third-party chatter at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
