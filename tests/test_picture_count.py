"""How many pictures a prompt's words ask for (``imgbot.chat.picture_count``)."""

from __future__ import annotations

import time

import pytest

from imgbot.chat.picture_count import CEILING, SCANNED_CHARS, picture_count

TABLE = [
    # asked for several
    ("画4张小猫", 4),
    ("来三张", 3),
    ("来4张小猫", 4),
    ("两张", 2),
    ("小猫，两张", 2),
    ("给我来2张海边日落", 2),
    ("生成 3 张赛博朋克城市", 3),
    ("画４张猫", 4),  # full-width digit
    ("再来两幅山水画", 2),
    ("一只猫 3张图", 3),
    ("画十张", 10),
    ("画十二张", 12),
    ("画二十张", 20),
    ("画一百张", CEILING),
    ("画1000张", CEILING),
    ("4 images of a cat", 4),
    ("draw 3 pictures of a fox", 3),
    ("4 pictures", 4),
    ("two different versions of a logo", 2),
    ("Four Photos of the sea", 4),
    ("画4K壁纸2张", 2),
    ("画2张4K壁纸", 2),
    # one picture: the words name things in it, an ordinal, a size, or nothing countable
    ("一张四只猫的图", 1),
    ("画一张四只猫的图", 1),
    ("画三只猫", 1),
    ("桌上有三张纸", 1),
    ("三张桌子和一把椅子", 1),
    ("把第三张改成蓝色", 1),
    ("画第二张", 1),
    ("画几张小猫", 1),
    ("多张风景", 1),
    ("4K 高清壁纸", 1),
    ("16:9 的海边日落", 1),
    ("1024x1024 images", 1),
    ("a cat with 4 legs", 1),
    ("a picture of 3 cats", 1),
    ("some pictures of the sea", 1),
    ("v1.5 images", 1),
    ("画0张", 1),
    ("", 1),
    # decided: a verb before 「三张」 makes it a count, even of tables
    ("画三张桌子", 3),
    ("画一张三张桌子的图", 1),
    # several counts: the first that counts
    ("画2张，每张三只猫", 2),
    ("3 images, 画4张", 3),
    # digits other than ASCII ones (Arabic-Indic, Devanagari, N'Ko...) are not numerals here
    ("画٤张", 1),
    ("画४张", 1),
    ("小猫，٤张", 1),
    ("画߄张", 1),
    ("٣ images of a cat", 1),
    ("画𝟒张", 4),  # NFKC makes the mathematical digit a plain 4
    # far too many: the largest count, so the user is told the limit
    ("来一万张", CEILING),
    ("画一亿张", CEILING),
    ("画1000000张", CEILING),
    ("画12345678901234567890张", CEILING),
    # decided: a number touching a letter is not a count (1e3, v2)
    ("画1e3张", 1),
    # Traditional characters
    ("畫4張", 4),
    ("來兩張小貓", 2),
    # invisible characters hide nothing
    ("画\u200b4张", 4),
]


@pytest.mark.parametrize(("prompt", "count"), TABLE)
def test_picture_count_table(prompt: str, count: int) -> None:
    """Each prompt of the table asks for the pictures the table says."""
    assert picture_count(prompt) == count


def test_a_count_past_the_scanned_start_is_not_read() -> None:
    """Only the first SCANNED_CHARS characters are read."""
    assert picture_count("猫" * SCANNED_CHARS + "画4张") == 1
    assert picture_count("画4张" + "猫" * SCANNED_CHARS) == 4


def test_long_hostile_prompts_are_read_quickly() -> None:
    """Long runs of digits, numerals and classifiers do not slow the parser (no backtracking)."""
    started = time.process_time()
    for filler in ("1", "一", "张", "十张", "1 ", "第", "画"):
        picture_count(filler * 100_000)
    assert time.process_time() - started < 2.0
