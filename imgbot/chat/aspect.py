"""The shape a prompt asks for: 横版 / 竖版 / 方图, 16:9 and the like, and their English words.

``aspect_of(prompt)`` is pure and bounded: it reads ``prompts.scanned(prompt)`` (at most
``SCANNED_CHARS`` characters; invisible characters dropped, so 「横\u200b版」 is 横版; NFKC, so
full-width ``１６：９`` reads as ``16:9``; case-folded), with regular expressions that have no
nested repetition. It never changes the prompt: the words reach the provider as the user
wrote them; only the size imgbot asks for follows them.

The aspect is read once, where the words arrive (``chat.inbound`` for a chat message, the command
line for ``imgbot draw``), and travels on the ``ImageRequest`` (a durable job keeps it); the
pipeline turns it and IMAGE_SIZE into a wanted size, and each generator asks its model for the
size it takes nearest that (``generators.sizes``). Nothing flows back.

What counts:

- landscape, 16:9: 横版 横图 横屏 宽屏 宽幅 电脑壁纸 桌面壁纸; widescreen, landscape or horizontal
  orientation / format / mode / layout, horizontal image / picture / photo, desktop wallpaper;
- portrait, 9:16: 竖版 竖图 竖屏 竖幅 手机壁纸 手机屏保 锁屏壁纸; portrait or vertical orientation /
  format / mode / layout, vertical image / picture / photo, phone (mobile, iPhone) wallpaper;
- square, 1:1: 方图 方形图 正方形(图…); square image / picture / photo / format / crop;
- Traditional characters as well: 橫版 豎版 橫圖 豎圖 寬屏 (and the game words below);
- a ratio of ``RATIOS`` written ``W:H``, ``W：H`` or ``W比H`` (4:3, 3:2, 16:9, 21:9, 1:1 and the
  portrait ones): that ratio. A ratio says more than a word, so 「16:9 横版」 is 16:9 and
  「4:3 横图」 is 4:3.

Decisions on words that look alike but ask for something else:

- 「横版画风」「横版游戏」「竖版射击」: 横版 / 竖版 followed by 画风, 风格, 游戏, 过关, 闯关,
  卷轴, 动作, 射击, 格斗, 平台, 像素, 冒险 or 手游 name the side- or vertical-scrolling game
  genre and its art style, not the picture's shape: not counted. 「纵横图」 (a magic square)
  is not 横图.
- 方图 counts only as a word of its own (after a non-Chinese character, or after 张 幅 个 成
  为 要 画 来 做 出 是 的), so 「地方图书馆」「东方图腾」 are not square requests.
- 正方形 counts only when it names the picture (正方形的图, 正方形构图, 正方形头像, …) or stands
  alone between punctuation; 「一个正方形的盒子」 describes the subject.
- In English, "landscape" and "portrait" are also genres (a landscape painting, a portrait of a
  woman): alone they do not count, only with orientation / format / mode / layout / aspect / ratio.
  "square" likewise needs image / picture / photo / format / crop / aspect / ratio.
- Ratios outside ``RATIOS`` (a time such as 12:30, a score such as 3:1) and ratios touching other
  digits or colons (12:30:45, 116:9) are not counted. A listed one may still be a score
  (「比分 3:2」): that reading is accepted as the rare case it is.
- A word right after a negation (不要 别 不是 不用 不需要 无需 非, within three characters of the
  same clause, but not 特别 or 非常; no, not, don't, without, avoid) is not counted:
  「不要竖版，要横版」 is landscape. A negation reaches the next shape word only: in
  「不是竖版是横版」 (and 「不要竖版要横版」) it ends at 竖版, and the prompt is landscape.
- Words that disagree on the orientation (横版 and 竖版 both meant) give no aspect: the picture
  keeps IMAGE_SIZE rather than a guess.
"""

from __future__ import annotations

import re
from typing import Final

from imgbot.chat.prompts import scanned
from imgbot.models import Aspect

LANDSCAPE: Final = Aspect(16, 9)
PORTRAIT: Final = Aspect(9, 16)
SQUARE: Final = Aspect(1, 1)
RATIOS: Final = frozenset(
    {(1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (21, 9), (9, 21)}
)
"""The ratios read from ``W:H``; other pairs of numbers are more often times or scores."""

_GAME = (
    "(?!画风|风格|游戏|过关|闯关|卷轴|动作|射击|格斗|平台|像素|冒险|手游"
    "|畫風|風格|遊戲|過關|闖關|捲軸|動作|射擊|格鬥|冒險|手遊)"
)
_CLAUSE_START = r"(?:^|(?<=[\s,，。.;；!！?？、:]))"
_CLAUSE_END = r"(?=$|[\s,，。.;；!！?？、])"
_PICTURE_NOUN = "的?(?:图|圖|画面|构图|尺寸|比例|画幅|格式|版|照片|头像|壁纸|海报)"
_EN_SHAPE = r"\s+(?:orientation|format|mode|layout|aspect|ratio)\b"
_EN_PICTURE = r"\s+(?:image|picture|photo|poster|wallpaper|version)\b"
_WORDS: Final = (
    (LANDSCAPE, rf"(?<![纵縱])[横橫](?:版|图|圖|屏){_GAME}"),
    (LANDSCAPE, "[宽寬](?:屏|幅)|(?:电脑|電腦|桌面)(?:壁纸|壁紙)"),
    (LANDSCAPE, rf"\bwide-?\s?screen\b|\b(?:landscape|horizontal){_EN_SHAPE}"),
    (LANDSCAPE, rf"\bhorizontal{_EN_PICTURE}|\b(?:desktop|computer|laptop|pc)\s+wallpaper\b"),
    (PORTRAIT, rf"[竖豎](?:版|图|圖|屏|幅){_GAME}"),
    (PORTRAIT, "(?:手机|手機)(?:壁纸|壁紙|屏保|锁屏|鎖屏)|(?:锁屏|鎖屏)(?:壁纸|壁紙)"),
    (PORTRAIT, rf"\b(?:portrait|vertical){_EN_SHAPE}|\bvertical{_EN_PICTURE}"),
    (PORTRAIT, r"\b(?:phone|mobile|iphone|android|lock\s?screen)\s+wallpaper\b"),
    (SQUARE, r"(?:(?<![\u4e00-\u9fff])|(?<=[张張幅个個成为為要画畫来來做出是的]))方形?[图圖]"),
    (SQUARE, rf"正方形(?={_PICTURE_NOUN})|{_CLAUSE_START}正方形{_CLAUSE_END}"),
    (SQUARE, r"\bsquare\s+(?:image|picture|photo|format|crop|aspect|ratio|version)\b"),
)
_PATTERNS: Final = tuple((aspect, re.compile(pattern)) for aspect, pattern in _WORDS)
_RATIO: Final = re.compile(r"(?<![\d.:])(\d{1,2}) ?(?::|比) ?(\d{1,2})(?![\d:])")
_NEGATED_ZH: Final = re.compile(
    r"(?:不要|(?<![特区分告类性级识差辨个离派道鉴送])别|不是|不用|不需要|无需|非(?!常))"
    # The window stops at a shape word (版 图 屏 幅): 「不是竖版是横版」 negates 竖版 only.
    r"[^\s,，。.;；!！?？、版图圖屏幅]{0,3}$"
)
_NEGATED_EN: Final = re.compile(
    r"\b(?:no|not|don't|dont|without|avoid)\s+(?:an?\s+|the\s+|in\s+)?$"
)


def aspect_of(prompt: str) -> Aspect | None:
    """The aspect ``prompt``'s words ask for, or None when they ask for none (or disagree)."""
    text = scanned(prompt)
    words: list[Aspect] = []
    ratios: list[Aspect] = []
    for aspect, pattern in _PATTERNS:
        words += [aspect for m in pattern.finditer(text) if not _negated(text, m.start())]
    for match in _RATIO.finditer(text):
        pair = (int(match.group(1)), int(match.group(2)))
        if pair in RATIOS and not _negated(text, match.start()):
            ratios.append(Aspect(*pair))
    found = ratios + words
    if len({_orientation(aspect) for aspect in found}) != 1:
        return None
    return found[0]


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 16) : start]
    return bool(_NEGATED_ZH.search(before[-6:]) or _NEGATED_EN.search(before))


def _orientation(aspect: Aspect) -> int:
    """1 for landscape, -1 for portrait, 0 for square."""
    return (aspect.width > aspect.height) - (aspect.width < aspect.height)
