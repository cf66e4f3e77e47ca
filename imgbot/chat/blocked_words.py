"""BLOCKED_WORDS_FILE: words and phrases that refuse a prompt before any provider call.

The file is UTF-8 (a byte-order mark is allowed), one word or phrase a line; blank lines and lines
whose first visible character is ``#`` are skipped. Entries and prompts are compared in one form,
``prompts.folded``: the prompt's own cleaning (control, zero-width and bidi characters dropped,
spaces folded), then NFKC (full-width letters and digits as plain ones) and case folding. Of a
prompt, ``prompts.scanned`` is read: its first ``SCANNED_CHARS`` characters, at most that many once
folded (MAX_PROMPT_CHARS defaults to less, so by default the whole prompt).

- An entry holding any non-ASCII character (Chinese, say) matches anywhere in the prompt, with
  spaces, punctuation, symbols (emoji among them) and combining marks ignored on both sides:
  「坏 词」「坏，词」「坏😀词」 are refused by 坏词. An entry made only of such characters (an
  emoji) is matched as written, spaces ignored.
- An entry of ASCII only matches whole words (runs of letters and digits, combining marks
  dropped first, so n̶sfw reads as nsfw), so ``ass`` does not refuse ``class``; a phrase
  (``bad word``) matches those words in a row, whatever separates them.

Each kind of entry is compiled once per list into one regular expression, a trie of the entries
(their common starts shared), so a check walks the prompt once, not once per entry.

The file is bounded (``MAX_FILE_BYTES``, ``MAX_ENTRIES``, ``MAX_ENTRY_CHARS``). It is opened
without blocking (a FIFO or device put in its place is refused as "not a regular file", checked
on the open descriptor); a symbolic link is followed (Kubernetes mounts a ConfigMap so). It is
read again when it changes: each check compares its modification time, size and inode with the
last read (one ``stat`` on the event loop), and a changed file is read and parsed in a thread, the
list read before serving meanwhile. An edit, or a new file moved into place, holds from then on,
in every replica that reads the file, with no signal. Replace the file by rename (write the new
one beside it, then ``mv``): a file read while it is being rewritten may be cut short. A file
that reads empty after a list that was not is taken for such a half-written file and not used.
A file that cannot be read, or breaks a bound, refuses the start (``ConfigError`` naming
BLOCKED_WORDS_FILE); later, the last good list is kept and the problem is logged once, until the
file reads again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from imgbot.chat.prompts import folded, scanned
from imgbot.errors import ConfigError, ImgbotError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
"""The largest BLOCKED_WORDS_FILE read, in bytes (1 MiB: about 100,000 Chinese words)."""
MAX_ENTRIES = 10_000
"""The most words and phrases BLOCKED_WORDS_FILE may list. A check of a 2,000-character prompt
against 10,000 entries takes about 1 ms for a list of ordinary words, and under 30 ms (measured
on a busy core) for lists crafted to share long starts or to start with every character of the
prompt."""
MAX_ENTRY_CHARS = 100
"""The longest word or phrase, in characters once folded (a sentence is not a word)."""
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_IGNORED = ("P", "S", "M", "Z")
"""Unicode category classes ignored between the characters of an entry matched anywhere:
punctuation, symbols (emoji too), combining marks, separators."""
Signature = tuple[int, int, int]
"""What tells a file changed: modification time (ns), size, inode."""


class UnreadableList(ImgbotError, ValueError):
    """BLOCKED_WORDS_FILE cannot be used as it is; the message says why."""


def _bare(text: str) -> str:
    """``text`` without spaces, punctuation, symbols and combining marks."""
    return "".join(c for c in text if unicodedata.category(c)[0] not in _IGNORED)


def _words_view(text: str) -> str:
    """``text``'s ASCII words, each between single spaces: `` bad word ``; combining marks are
    dropped first (n̶sfw is nsfw)."""
    unmarked = "".join(c for c in text if unicodedata.category(c)[0] != "M")
    words = _NOT_WORD.sub(" ", unmarked).split()
    return f" {' '.join(words)} " if words else ""


def _trie_pattern(entries: set[str]) -> re.Pattern[str] | None:
    """One expression matching any of ``entries``: a trie, so entries sharing a start share its
    steps; None for no entries. Depth is bounded by ``MAX_ENTRY_CHARS``."""
    if not entries:
        return None
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for entry in entries:
        node = root
        for char in entry:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict) -> str:  # type: ignore[type-arg]
        branches = [re.escape(c) + pattern(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(pattern(root))


@dataclass(frozen=True, slots=True)
class WordList:
    """Parsed entries, compiled: those matched anywhere (``_bare``), those made only of ignored
    characters (spaces removed), and ASCII words (``_words_view``)."""

    count: int = 0
    anywhere: re.Pattern[str] | None = field(default=None, repr=False)
    symbols: re.Pattern[str] | None = field(default=None, repr=False)
    words: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> WordList:
        """The entries of a file's ``text``; ``UnreadableList`` past ``MAX_ENTRIES`` or
        ``MAX_ENTRY_CHARS``."""
        anywhere: set[str] = set()
        symbols: set[str] = set()
        words: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            entry = folded(line)
            if not entry or entry.startswith("#"):
                continue
            if len(entry) > MAX_ENTRY_CHARS:
                raise UnreadableList(f"line {number} is longer than {MAX_ENTRY_CHARS} characters")
            view = _words_view(entry) if entry.isascii() else ""
            if view:
                words.add(view)
            elif bare := _bare(entry):
                anywhere.add(bare)
            else:
                symbols.add(_SPACES.sub("", entry))
            if len(anywhere) + len(symbols) + len(words) > MAX_ENTRIES:
                raise UnreadableList(f"lists more than {MAX_ENTRIES} words")
        count = len(anywhere) + len(symbols) + len(words)
        return cls(count, _trie_pattern(anywhere), _trie_pattern(symbols), _trie_pattern(words))

    def __len__(self) -> int:
        return self.count

    def matches(self, prompt: str) -> bool:
        """True when ``prompt`` (its ``prompts.scanned`` part) holds an entry."""
        text = scanned(prompt)
        return bool(
            (self.anywhere is not None and self.anywhere.search(_bare(text)))
            or (self.symbols is not None and self.symbols.search(_SPACES.sub("", text)))
            or (self.words is not None and self.words.search(_words_view(text)))
        )


def read_list(path: Path) -> WordList:
    """The entries of the file at ``path``; ``OSError`` or ``UnreadableList``."""
    # Not blocking: a FIFO swapped in after a stat would block open() for ever.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnreadableList("is not a regular file")  # a FIFO would block, a device never end
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(descriptor, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(descriptor)
    raw = b"".join(chunks)
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

    def refuses_now(self, prompt: str) -> bool:
        """True when ``prompt`` holds a word of the list as last read (no check of the file)."""
        return self._words.matches(prompt)

    async def refuses(self, prompt: str) -> bool:
        """True when ``prompt`` holds a listed word (the file read again first, in a thread, if
        it changed)."""
        await self._refresh()
        return self._words.matches(prompt)

    async def _refresh(self) -> None:
        try:
            signature = _signature(self._path)
            if signature == self._seen:
                return
            self._seen = signature  # a file that cannot be used is not read again until it changes
            words = await asyncio.to_thread(read_list, self._path)
        except OSError as exc:
            self._failed(f"{self._path}: {exc.strerror or exc}")
            return
        except UnreadableList as exc:
            self._failed(f"{self._path} {exc}")
            return
        if not words and self._words:
            self._failed(f"{self._path} reads empty (being rewritten? replace it by rename)")
            return
        self._words, self._failing = words, False
        log.info("blocked words: %d from %s (the file changed)", len(words), self._path)

    def _failed(self, problem: str) -> None:
        if not self._failing:
            log.warning("blocked words: %s; keeping the %d read before", problem, len(self._words))
        self._failing = True
