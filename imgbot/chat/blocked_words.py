"""BLOCKED_WORDS_FILE: words and phrases that refuse a prompt before any provider call.

The file is UTF-8 (a byte-order mark is allowed), one word or phrase a line; blank lines and lines
whose first visible character is ``#`` are skipped. Entries and prompts are compared in one form,
``prompts.folded``: the prompt's own cleaning (control, zero-width and bidi characters dropped,
spaces folded), then NFKC (full-width letters and digits as plain ones) and case folding.

- An entry holding any non-ASCII character (Chinese, say) matches anywhere in the prompt, spaces
  ignored on both sides: 「坏 词」 is refused by 坏词.
- An entry of ASCII only matches whole words (runs of letters and digits), so ``ass`` does not
  refuse ``class``; a phrase (``bad word``) matches those words in a row, whatever separates them.

The file is bounded (``MAX_FILE_BYTES``, ``MAX_ENTRIES``). It is read again when it changes: each
check compares its modification time, size and inode with the last read (one ``stat``), so an
edit, or a new file moved into place, holds from the next message on, in every replica that reads
the file, with no signal. A file that cannot be read, or breaks a bound, refuses the start
(``ConfigError`` naming BLOCKED_WORDS_FILE); later, the last good list is kept and the problem is
logged once, until the file reads again.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from imgbot.chat.prompts import folded
from imgbot.errors import ConfigError, ImgbotError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
"""The largest BLOCKED_WORDS_FILE read, in bytes (1 MiB: about 100,000 Chinese words)."""
MAX_ENTRIES = 10_000
"""The most words and phrases BLOCKED_WORDS_FILE may list; each message is checked against
all of them (about 8 ms for 10,000 and a 1,000-character prompt, measured on a busy core)."""
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
Signature = tuple[int, int, int]
"""What tells a file changed: modification time (ns), size, inode."""


class UnreadableList(ImgbotError, ValueError):
    """BLOCKED_WORDS_FILE cannot be used as it is; the message says why."""


def _words_view(text: str) -> str:
    """``text``'s ASCII words, each between single spaces: `` bad word ``."""
    words = _NOT_WORD.sub(" ", text).split()
    return f" {' '.join(words)} " if words else ""


@dataclass(frozen=True, slots=True)
class WordList:
    """Parsed entries: those matched anywhere (spaces removed), and ASCII words
    (``_words_view``)."""

    anywhere: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> WordList:
        """The entries of a file's ``text``; ``UnreadableList`` past ``MAX_ENTRIES``."""
        anywhere: set[str] = set()
        words: set[str] = set()
        for line in text.splitlines():
            entry = folded(line)
            if not entry or entry.startswith("#"):
                continue
            view = _words_view(entry) if entry.isascii() else ""
            if view:
                words.add(view)
            else:
                anywhere.add(_SPACES.sub("", entry))
            if len(anywhere) + len(words) > MAX_ENTRIES:
                raise UnreadableList(f"lists more than {MAX_ENTRIES} words")
        return cls(tuple(sorted(anywhere)), tuple(sorted(words)))

    def __len__(self) -> int:
        return len(self.anywhere) + len(self.words)

    def matches(self, prompt: str) -> bool:
        """True when ``prompt`` holds an entry."""
        text = folded(prompt)
        bare = _SPACES.sub("", text)
        if any(entry in bare for entry in self.anywhere):
            return True
        view = _words_view(text)
        return bool(view) and any(entry in view for entry in self.words)


def read_list(path: Path) -> WordList:
    """The entries of the file at ``path``; ``OSError`` or ``UnreadableList``."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise UnreadableList("is not a regular file")  # a FIFO would block, a device never end
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise UnreadableList(f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UnreadableList(f"is not UTF-8 (line {line})") from None
    return WordList.parse(text)


def _signature(path: Path) -> Signature:
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size, info.st_ino


class BlockedWords:
    """The words of BLOCKED_WORDS_FILE, read again whenever the file changes."""

    def __init__(self, path: Path, words: WordList, signature: Signature | None) -> None:
        """Use ``words``, read from ``path`` when it had ``signature`` (``load`` does both)."""
        self._path = path
        self._words = words
        self._seen = signature
        self._failing = False

    @classmethod
    def load(cls, path: Path) -> BlockedWords:
        """The list at ``path``; ``ConfigError`` naming BLOCKED_WORDS_FILE when it is unusable."""
        try:
            signature = _signature(path)
            words = read_list(path)
        except OSError as exc:
            raise ConfigError("BLOCKED_WORDS_FILE", f"{path}: {exc.strerror or exc}") from None
        except UnreadableList as exc:
            raise ConfigError("BLOCKED_WORDS_FILE", f"{path} {exc}") from None
        log.info("blocked words: %d from %s", len(words), path)
        return cls(path, words, signature)

    def __repr__(self) -> str:
        return f"BlockedWords({str(self._path)!r}, {len(self._words)} entries)"

    def refuses(self, prompt: str) -> bool:
        """True when ``prompt`` holds a listed word (the file read again first if it changed)."""
        self._refresh()
        return self._words.matches(prompt)

    def _refresh(self) -> None:
        try:
            signature = _signature(self._path)
            if signature == self._seen:
                return
            self._seen = signature  # a file that cannot be used is not read again until it changes
            words = read_list(self._path)
        except OSError as exc:
            self._failed(f"{self._path}: {exc.strerror or exc}")
            return
        except UnreadableList as exc:
            self._failed(f"{self._path} {exc}")
            return
        self._words, self._failing = words, False
        log.info("blocked words: %d from %s (the file changed)", len(words), self._path)

    def _failed(self, problem: str) -> None:
        if not self._failing:
            log.warning("blocked words: %s; keeping the %d read before", problem, len(self._words))
        self._failing = True
