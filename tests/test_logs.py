"""Log redaction: secrets and credential query values never reach the log text."""

from __future__ import annotations

import logging

from imgbot.logs import RedactingFormatter

SECRET = "s3-secret-value-123"


def _format(message: str, *args: object, exc: BaseException | None = None) -> str:
    formatter = RedactingFormatter("%(message)s", [SECRET])
    record = logging.LogRecord(
        "t",
        logging.WARNING,
        __file__,
        1,
        message,
        args,
        (type(exc), exc, exc.__traceback__) if exc else None,
    )
    return formatter.format(record)


def test_signed_url_values_redacted() -> None:
    """Presigned signatures and credentials are removed, the rest of the URL stays readable."""
    url = (
        "https://h/b/k.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F2026"
        "&X-Amz-Signature=abcdef0123"
    )
    text = _format("link %s", url)
    assert "abcdef0123" not in text and "AK%2F2026" not in text
    assert "https://h/b/k.png" in text


def test_ticket_session_and_secret_redacted() -> None:
    """Stream tickets, webhook sessions and configured secrets are removed."""
    text = _format("ws://h/connect?ticket=TICKET123 http://h/robot?session=SESS456 key=%s", SECRET)
    assert "TICKET123" not in text and "SESS456" not in text and SECRET not in text


def test_traceback_text_redacted() -> None:
    """Secrets inside an exception's traceback text are removed too."""
    try:
        raise RuntimeError(f"failed with {SECRET} at http://h/x?X-Amz-Signature=deadbeef")
    except RuntimeError as exc:
        text = _format("boom", exc=exc)
    assert "RuntimeError" in text and SECRET not in text and "deadbeef" not in text
