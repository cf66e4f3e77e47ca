"""Moderation end to end: the providers' refusals in each documented shape, and the blocked words
that refuse a prompt before any provider call; `imgbot run`'s bot against the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from imgbot.chat.blocked_words import (
    MAX_ENTRIES,
    MAX_ENTRY_CHARS,
    BlockedWords,
    UnreadableList,
    WordList,
    read_list,
)
from imgbot.chat.prompts import SCANNED_CHARS
from imgbot.delivery import texts as chat_texts
from imgbot.errors import ConfigError
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import image_replies, running_bot
from tests.fake_providers import FakeProviders
from tests.images import encode, photo_like
from tests.polling import wait_until

CAT = "帮我画一只可爱的小猫"
SEA = "背景换成海边"
# (provider, where DashScope refuses, DASHSCOPE_EDIT_MODEL, an edit?)
REFUSALS = [
    pytest.param("dashscope", "call", "", False, id="dashscope-submit-400"),
    pytest.param("dashscope", "task", "", False, id="dashscope-task-failed"),
    pytest.param("dashscope", "result", "", False, id="dashscope-result-item"),
    pytest.param("openai", "call", "", False, id="openai-moderation-blocked"),
    pytest.param("dashscope", "call", "qwen-image-edit", True, id="qwen-edit-400"),
    pytest.param("dashscope", "call", "wanx2.1-imageedit", True, id="wanx-edit-submit-400"),
    pytest.param("dashscope", "task", "wanx2.1-imageedit", True, id="wanx-edit-task-failed"),
    pytest.param("openai", "call", "", True, id="openai-edit-moderation-blocked"),
]


def sent_picture() -> bytes:
    """A picture within every edit API's documented bounds."""
    return encode(photo_like(640, 6).resize((640, 512)), "PNG")


@pytest.mark.minio
@pytest.mark.e2e
@pytest.mark.parametrize(("kind", "where", "edit_model", "edit"), REFUSALS)
async def test_provider_refusal_is_the_moderation_sentence(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    providers: FakeProviders,
    kind: Any,
    where: Any,
    edit_model: str,
    edit: bool,
) -> None:
    """A provider's content refusal, drawing or editing, at the call or in a DashScope task, is
    answered with the moderation sentence, counted as "moderated", and never retried."""
    providers.script.outcome = "moderated"
    providers.script.moderated_in = where
    settings = providers.settings_for(kind)
    if edit_model:
        settings["dashscope_edit_model"] = edit_model
    async with running_bot(simulator, **settings) as bot:
        if edit:
            await simulator.send_rich_text([SEA, sent_picture()])
        else:
            await simulator.send_text(CAT)
        replies = await simulator.wait_for_replies(2, timeout=30)
        await wait_until(lambda: bot.metrics.outcomes().get("moderated") == 1)
    assert replies[-1].text == chat_texts.MODERATED
    assert bot.metrics.outcomes() == {"moderated": 1}
    assert len(providers.api_requests("POST")) == 1


@pytest.fixture
def words_file(tmp_path: Path) -> Path:
    """A blocked-words file: a comment, a blank line, a Chinese word, an English phrase."""
    path = tmp_path / "blocked.txt"
    path.write_text("# 禁用词\n\n坏词\nBad Word\n", encoding="utf-8")
    return path


@pytest.mark.minio
@pytest.mark.e2e
async def test_blocked_words_refuse_before_any_provider_call(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    providers: FakeProviders,
    words_file: Path,
) -> None:
    """A prompt or an edit instruction holding a listed word, however it is written (full
    width, case, zero-width characters, spaces), gets the moderation sentence; the provider
    sees no call; other prompts are drawn."""
    settings = providers.settings_for("dashscope") | {"blocked_words_file": str(words_file)}
    tries = ["画一个坏\u200b词", "画一个 坏 词", "a ＢＡＤ  word, please", "a BAD-word"]
    async with running_bot(simulator, **settings) as bot:
        for n, prompt in enumerate(tries):
            await simulator.send_text(prompt, sender_staff_id=f"u{n}")
        await simulator.send_rich_text(["把背景换成坏词", sent_picture()], sender_staff_id="edit")
        await wait_until(lambda: bot.metrics.outcomes().get("moderated") == 5)
        assert providers.api_requests() == []
        await simulator.send_text("a badword-free bad wording", sender_staff_id="fine")
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
    texts = [r.text for r in simulator.replies]
    assert texts.count(chat_texts.MODERATED) == 5
    assert bot.metrics.outcomes() == {"moderated": 5, "image": 1}
    assert len(providers.api_requests("POST")) == 1


@pytest.mark.minio
@pytest.mark.e2e
async def test_blocked_words_follow_the_file(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    words_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A word added to the file refuses from the next message on; a file that becomes unusable
    (not UTF-8, then gone) keeps the words read before and is logged once; a good file again is
    read again."""
    caplog.set_level(logging.INFO, logger="imgbot.chat.blocked_words")
    async with running_bot(simulator, blocked_words_file=str(words_file)) as bot:
        await simulator.send_text("画一只小猫", sender_staff_id="a")
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        await asyncio.to_thread(words_file.write_text, "坏词\n小猫\n", encoding="utf-8")
        await simulator.send_text("画一只小猫", sender_staff_id="b")
        await wait_until(lambda: bot.metrics.outcomes().get("moderated") == 1)
        await asyncio.to_thread(words_file.write_bytes, b"\xff\xfe not utf-8\n")
        for user in ("c", "d"):
            await simulator.send_text("画一只小猫", sender_staff_id=user)
        await wait_until(lambda: bot.metrics.outcomes().get("moderated") == 3)
        await asyncio.to_thread(words_file.unlink)
        await simulator.send_text("画一只小猫", sender_staff_id="e")
        await wait_until(lambda: bot.metrics.outcomes().get("moderated") == 4)
        await asyncio.to_thread(words_file.write_text, "坏词\n", encoding="utf-8")
        await simulator.send_text("画一只小猫", sender_staff_id="f")
        await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=30)
    [said] = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "imgbot.chat.blocked_words"
    ]
    assert "is not UTF-8 (line 1)" in said and "keeping the 2 read before" in said


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file or directory"),
        ("fifo", "is not a regular file"),
        (b"ok\n\xc3\x28\n", "is not UTF-8 (line 2)"),
        ("".join(f"w{n}\n" for n in range(MAX_ENTRIES + 1)).encode(), "more than"),
        (b"a" * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_an_unusable_file_stops_the_start(
    tmp_path: Path, content: bytes | str | None, problem: str
) -> None:
    """A missing, non-UTF-8 or oversized file, or a FIFO (never read: it would block), is a
    ConfigError naming BLOCKED_WORDS_FILE."""
    path = tmp_path / "blocked.txt"
    if content == "fifo":
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        BlockedWords.load(path)
    assert refused.value.key == "BLOCKED_WORDS_FILE" and problem in str(refused.value)


def test_run_with_a_missing_file_exits_2(
    tmp_path: Path, cli_here: Any, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`imgbot run` with a BLOCKED_WORDS_FILE that is not there exits 2 naming the key."""
    monkeypatch.setenv("BLOCKED_WORDS_FILE", str(tmp_path / "missing.txt"))
    monkeypatch.setenv("DINGTALK_CLIENT_ID", "ding-app")
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", "ding-secret")
    result = cli_here("run")
    assert result.returncode == 2 and "BLOCKED_WORDS_FILE" in result.stderr


@pytest.mark.parametrize(
    ("prompt", "refused"),
    [
        ("一个坏词", True),
        ("一个坏\u3000词", True),
        ("一个坏\u200d词", True),
        ("BAD WORD!", True),
        ("bad\tword", True),
        ("ｂａｄ　ｗｏｒｄ", True),
        ("bad words", False),
        ("badword", False),
        ("a bad sword", False),
        ("class", False),
        ("ass.", True),
        ("好词", False),
        # punctuation, symbols, emoji and combining marks between the characters hide nothing
        ("一个坏，词", True),
        ("一个坏😀词", True),
        ("一个坏·词", True),
        ("一个坏\u0301词", True),
        ("n\u0336sfw art", True),
        ("N-S-F-W", False),  # ASCII entries stay whole words: n s f w are four
        ("一个💩", True),  # an entry of symbols only, matched as written
        ("坏人说的词", False),
    ],
)
def test_matching_rule(prompt: str, refused: bool) -> None:
    """Chinese entries match anywhere, spaces, punctuation, symbols and marks ignored; ASCII
    entries match whole words; both after width, case and invisible characters are folded."""
    words = WordList.parse("坏词\nbad word\nASS\n# bad\nnsfw\n💩\n")
    assert words.matches(prompt) is refused


def test_only_the_scanned_start_of_a_prompt_is_read() -> None:
    """Words are looked for in the first SCANNED_CHARS characters, counted before and after
    folding (U+FDFA folds to 18 characters): later ones are not read, earlier ones always."""
    words = WordList.parse("坏词\n")
    assert words.matches("坏词" + "猫" * 100_000)
    assert words.matches("猫" * (SCANNED_CHARS - 2) + "坏词")
    assert not words.matches("猫" * SCANNED_CHARS + "坏词")
    assert not words.matches("\ufdfa" * 120 + "坏词")


def test_ten_thousand_entries_sharing_starts_compile_to_one_matcher() -> None:
    """A list of MAX_ENTRIES entries that share long starts is one compiled expression per kind
    and still finds each entry, and nothing else."""
    entries = ["张" * (20 + n % 78) + chr(0x4E00 + n) + chr(0x4E00 + n // 7) for n in range(10_000)]
    words = WordList.parse("\n".join(entries))
    assert len(words) == MAX_ENTRIES and words.anywhere is not None
    assert all(words.matches(f"画{entry}吧") for entry in entries[::997])
    assert not words.matches("张" * 1000)


def test_an_entry_past_the_longest_is_refused() -> None:
    """An entry longer than MAX_ENTRY_CHARS makes the file unusable, naming the line."""
    with pytest.raises(UnreadableList, match="line 2 is longer than"):
        WordList.parse("坏词\n" + "长" * (MAX_ENTRY_CHARS + 1))


async def test_a_file_read_empty_keeps_the_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that reads empty after a list (caught mid-rewrite) keeps the list, logged once;
    an empty list read at the start is an empty list."""
    path = tmp_path / "blocked.txt"
    path.write_text("坏词\n", encoding="utf-8")
    words = BlockedWords.load(path)
    path.write_text("", encoding="utf-8")
    os.utime(path, ns=(1, 1))
    assert await words.refuses("一个坏词")
    path.write_text("\n", encoding="utf-8")
    assert await words.refuses("一个坏词")
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "reads empty" in said[0]
    path.write_text("好词\n", encoding="utf-8")
    assert not await words.refuses("一个坏词") and await words.refuses("好词")
    path.write_text("", encoding="utf-8")
    assert not await BlockedWords.load(path).refuses("一个坏词")


def test_a_fifo_is_never_opened_for_blocking_reads(tmp_path: Path) -> None:
    """read_list opens without blocking and checks the open descriptor: a FIFO with no writer is
    refused at once."""
    path = tmp_path / "blocked.txt"
    os.mkfifo(path)
    with pytest.raises(UnreadableList, match="not a regular file"):
        read_list(path)


@pytest.mark.minio
def test_doctor_reports_an_unreadable_words_file(
    tmp_path: Path, cli_here: Any, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor reads BLOCKED_WORDS_FILE as the bot would and names it when it cannot."""
    path = tmp_path / "blocked.txt"
    path.write_bytes(b"\xff\n")
    monkeypatch.setenv("BLOCKED_WORDS_FILE", str(path))
    done = cli_here("doctor", "--json")
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1 and checks["configuration"]["ok"] is False
    assert checks["configuration"]["detail"] == f"BLOCKED_WORDS_FILE: {path} is not UTF-8 (line 1)"
