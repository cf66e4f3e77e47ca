"""The aspect a prompt's words ask for (``imgbot.chat.aspect``), as a table of prompts."""

from __future__ import annotations

import time

import pytest

from imgbot.chat.aspect import LANDSCAPE, PORTRAIT, SQUARE, aspect_of
from imgbot.chat.prompts import SCANNED_CHARS
from imgbot.models import Aspect

TABLE: list[tuple[str, Aspect | None]] = [
    # Chinese words
    ("画一张横版的海边日落", LANDSCAPE),
    ("横图，雪山和湖", LANDSCAPE),
    ("宽屏的城市夜景", LANDSCAPE),
    ("电脑壁纸：星空", LANDSCAPE),
    ("手机壁纸，竖版", PORTRAIT),
    ("竖图 一只猫", PORTRAIT),
    ("做成竖屏的海报", PORTRAIT),
    ("锁屏壁纸 樱花", PORTRAIT),
    ("一张方图，头像用", SQUARE),
    ("画个方形图的小狗", SQUARE),
    ("正方形构图的静物", SQUARE),
    ("猫咪头像，正方形", SQUARE),
    # Ratios, full-width and 比
    ("海边日落 16:9", LANDSCAPE),
    ("海边日落 １６：９", LANDSCAPE),
    ("16比9的风景", LANDSCAPE),
    ("4:3 的老照片", Aspect(4, 3)),
    ("3:4 人像", Aspect(3, 4)),
    ("9:16 手机壁纸", PORTRAIT),
    ("1:1 logo", SQUARE),
    ("21:9 电影感", Aspect(21, 9)),
    ("4:3 横图", Aspect(4, 3)),
    # English
    ("a sunset over the sea, landscape orientation", LANDSCAPE),
    ("widescreen shot of a city", LANDSCAPE),
    ("a horizontal image of a forest", LANDSCAPE),
    ("desktop wallpaper with mountains", LANDSCAPE),
    ("a cat, portrait format", PORTRAIT),
    ("phone wallpaper of the moon", PORTRAIT),
    ("a vertical poster for a concert", PORTRAIT),
    ("square image of a robot", SQUARE),
    ("A CAT IN PORTRAIT MODE", PORTRAIT),
    # False friends: kept at IMAGE_SIZE
    ("横版画风的勇者", None),
    ("横版游戏里的城堡", None),
    ("竖版射击游戏的飞机", None),
    ("纵横图的数字", None),
    ("地方图书馆门口", None),
    ("东方图腾", None),
    ("一个正方形的盒子", None),
    ("a landscape painting of mountains", None),
    ("a portrait of a woman", None),
    ("a square table in a room", None),
    ("闹钟指向 12:30", None),
    ("比分 3:1 的足球赛", None),
    ("时间 12:30:45", None),
    ("116:9", None),
    # Negations and disagreement
    ("不要竖版，要横版", LANDSCAPE),
    ("横版，不要竖版", LANDSCAPE),
    ("不要做成横版", None),
    ("特别宽屏的画面", LANDSCAPE),
    ("not in portrait format, landscape format please", LANDSCAPE),
    ("横版还是竖版都行", None),
    ("16:9 竖版", None),
    ("不是竖版是横版", LANDSCAPE),
    ("不要竖版要横版", LANDSCAPE),
    ("不是横屏，是竖屏", PORTRAIT),
    # Traditional characters
    ("畫一張橫版的海邊日落", LANDSCAPE),
    ("豎版手機壁紙", PORTRAIT),
    ("橫圖 雪山", LANDSCAPE),
    ("橫版遊戲裡的城堡", None),
    # invisible characters hide nothing
    ("横\u200b版的海边", LANDSCAPE),
    ("1\u200b6:9 的海边", LANDSCAPE),
    # Nothing said
    ("一只可爱的小猫", None),
    ("", None),
]


@pytest.mark.parametrize(("prompt", "expected"), TABLE, ids=[p or "empty" for p, _ in TABLE])
def test_aspect_table(prompt: str, expected: Aspect | None) -> None:
    """Each prompt of the table gives its aspect, or none."""
    assert aspect_of(prompt) == expected


def test_only_the_start_of_a_long_prompt_is_read() -> None:
    """Words past SCANNED_CHARS characters are not looked at, and a huge prompt is read quickly."""
    assert aspect_of("猫" * SCANNED_CHARS + "横版") is None
    assert aspect_of("横版" + "猫" * SCANNED_CHARS) == LANDSCAPE
    started = time.process_time()
    aspect_of("不要" * 500_000 + "1:" * 500_000)
    assert time.process_time() - started < 1.0


def test_aspect_shows_as_a_ratio() -> None:
    """An aspect prints as W:H, as logs show it."""
    assert str(LANDSCAPE) == "16:9" and PORTRAIT.ratio == 9 / 16
