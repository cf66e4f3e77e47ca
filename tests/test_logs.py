"""Log redaction: secrets and credential query values never reach the log text."""

from __future__ import annotations

import logging

from imgbot.service.logs import RedactingFormatter

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


FORGED = "\n2026-01-01 00:00:00,000 INFO imgbot.bot: forged"


def test_newline_in_an_argument_cannot_forge_a_line() -> None:
    """A provider id holding a newline and a fake record stays inside one escaped line."""
    text = _format("dashscope task %s: done", "task-1" + FORGED)
    assert len(text.splitlines()) == 1
    assert text == "dashscope task task-1\\n2026-01-01 00:00:00,000 INFO imgbot.bot: forged: done"


def test_control_and_bidi_characters_are_escaped() -> None:
    """CR, ESC, NUL, C1 controls, line separators and bidi overrides are shown escaped."""
    text = _format("file %s", "a\rb\x1b[31mc\x00d\x85e\u2028f\u202eg\u2066h\ti")
    assert text == "file a\\rb\\x1b[31mc\\x00d\\x85e\\u2028f\\u202eg\\u2066h\\ti"
    assert text.isprintable()


def test_message_text_itself_is_escaped() -> None:
    """A message built without %-arguments (an f-string from outside text) is escaped too."""
    assert (
        _format(f"error: {FORGED}") == "error: \\n2026-01-01 00:00:00,000 INFO imgbot.bot: forged"
    )


def test_traceback_stays_multiline_and_cannot_forge_a_record() -> None:
    """log.exception keeps a readable multi-line traceback; every line after the first is
    indented, so an exception message with a newline cannot start a line like a record."""
    try:
        raise RuntimeError("provider said" + FORGED + "\x1b[2J")
    except RuntimeError as exc:
        text = _format("generation %s failed", "t\n1", exc=exc)
    first, *rest = text.splitlines()
    assert first == "generation t\\n1 failed"
    assert rest[0].strip() == "Traceback (most recent call last):" and len(rest) >= 3
    assert all(line.startswith(" ") for line in rest)
    assert any(
        line.strip() == "2026-01-01 00:00:00,000 INFO imgbot.bot: forged\\x1b[2J" for line in rest
    )
    assert "\x1b" not in text
