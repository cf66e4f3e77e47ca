"""Prompt cleaning shared by the bot and the command line: what the generator and replies see."""

from __future__ import annotations

import unicodedata


def clean_prompt(text: str) -> str:
    """Drop control and invisible format characters (NUL, zero-width, bidi), lone surrogates
    (undecodable bytes; they cannot be encoded as UTF-8), and fold spaces."""
    dropped = ("Cc", "Cf", "Cs")
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in dropped)
    return " ".join(kept.split())
