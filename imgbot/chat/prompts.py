"""Prompt cleaning shared by the bot and the command line: what the generator and replies see."""

from __future__ import annotations

import unicodedata


def clean_prompt(text: str) -> str:
    """Drop control and invisible format characters (NUL, zero-width, bidi), lone surrogates
    (undecodable bytes; they cannot be encoded as UTF-8), and fold spaces."""
    dropped = ("Cc", "Cf", "Cs")
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in dropped)
    return " ".join(kept.split())


def folded(text: str) -> str:
    """``text`` in the one form words are compared in (BLOCKED_WORDS_FILE, the words that ask
    for 「我的图片」): cleaned as a prompt is, then NFKC (full-width letters, digits and spaces
    become plain ones) and case-folded. The prompt sent to a provider is never folded."""
    return unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", clean_prompt(text)).casefold()
    )


SCANNED_CHARS = 2000
"""How much of a prompt its words are read from (the shape, the count, BLOCKED_WORDS_FILE): the
first ``SCANNED_CHARS`` characters, and at most that many once folded."""


def scanned(text: str) -> str:
    """The part of ``text`` whose words are read, in the form they are read in: its first
    ``SCANNED_CHARS`` characters, ``folded`` (so zero-width characters, width and case hide
    nothing), cut again to ``SCANNED_CHARS`` (NFKC turns one character into up to 18)."""
    return folded(text[:SCANNED_CHARS])[:SCANNED_CHARS]
