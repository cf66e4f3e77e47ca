"""How many pictures a request's words ask for: 「画4张」, 「来三张小猫」, "4 images of a cat".

``picture_count`` is pure and bounded: it reads ``prompts.scanned(prompt)`` (at most
``SCANNED_CHARS`` characters, invisible characters dropped, NFKC, case-folded) with patterns free of
nested repetition, and answers at most ``CEILING``. The words themselves are not
changed: the provider gets the prompt exactly as the user wrote it.

What counts, and what does not (``tests/test_picture_count.py`` holds the table):
- a number with 张 or 幅, when a drawing verb comes just before it (画, 来, 生成, 出, 做, 给我,
  要: 「画4张猫」, 「来三张小猫」, 「再来两幅」), or when the picture word follows it (图, 图片,
  照片, 壁纸, 头像, 插画) or the phrase ends there (「小猫，两张」, 「两张」);
- an English number ("4", "four") followed by images / pictures / pics / photos / drawings /
  versions / variations ("draw 3 pictures of a fox").
- Not counted: the things in one picture (「一张四只猫的图」 is one picture of four cats; 「桌上
  有三张纸」; 「画三只猫」), ordinals (「第三张」), vague amounts (「几张」, 「多张」, "some
  pictures"), sizes and resolutions (4K, 16:9, 1024x1024), zero. Without a count: one picture.
- Numerals: ASCII digits (full-width and other NFKC-compatible ones fold to them), English words
  one to ten, Chinese numerals (两 included). Other scripts' digits (「画٤张」, Devanagari) are
  not read: no count. A number touching a Latin letter or a dot is no count (「画1e3张」, v2).
- Far too many (「来一万张」, 亿, 百, 千, seven digits or more): ``CEILING``, so the user gets the
  most a message makes and is told why, as for 「画999张」.
- Traditional characters count too: 張, 畫, 來, 兩, 圖.
- Several counts: the first one that counts wins.
- Read as a count although it may name things: 「画三张桌子」 (three pictures); 「画一张三张桌子的
  图」 asks for one.
"""

from __future__ import annotations

import re

from imgbot.chat.prompts import SCANNED_CHARS, scanned

__all__ = ["CEILING", "SCANNED_CHARS", "picture_count"]

CEILING = 999
"""The largest count answered; MAX_IMAGES_PER_REQUEST clips far below it."""

_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2, "兩": 2}
_LARGE = frozenset("百千万萬亿億")
_CN_NUMBER = r"[零一二两兩三四五六七八九十百千万萬亿億]{1,8}"
_VERBS = ("画", "畫", "来", "來", "生成", "出", "做", "给我", "要")
# Python's look-behinds are of fixed width: one per verb, with and without a space after it
# (prompts arrive with their spaces folded to one).
_AFTER_VERB = "(?:" + "|".join(f"(?<={v})|(?<={v} )" for v in _VERBS) + ")"
_PICTURE_WORD = r"(?:图|圖|图片|照片|壁纸|头像|插画|画|畫)"
_PHRASE_END = r"(?:$|[\s，。,.!！?？;；、~～])"
# ASCII digits only: ``\d`` would take any script's digits, which ``int`` reads but nothing else
# here does. As many as written (the text is bounded): seven digits are "far too many", not 1.
_NUMBER = rf"(?P<n>[0-9]+|{_CN_NUMBER})"
_SHEET = "[张張幅]"
_AFTER_VERB_COUNT = re.compile(rf"(?<!第){_AFTER_VERB}{_NUMBER}\s?{_SHEET}")
_BEFORE_PICTURE_COUNT = re.compile(
    rf"(?<![0-9a-z.零一二两兩三四五六七八九十百千万萬亿億第]){_NUMBER}\s?{_SHEET}"
    rf"(?={_PICTURE_WORD}|{_PHRASE_END})"
)
_EN_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_ENGLISH = re.compile(
    rf"(?<![\w.:])(?P<n>[0-9]+|{'|'.join(_EN_WORDS)})\s+"
    r"(?:different\s+|more\s+)?(?:images?|pictures?|pics?|photos?|drawings?|versions?|variations?)\b",
    re.IGNORECASE,
)


def picture_count(prompt: str) -> int:
    """How many pictures ``prompt`` asks for: 1 unless its words name a count (at most
    ``CEILING``)."""
    # Folding makes full-width digits (「４张」) ASCII ones.
    text = scanned(prompt)
    patterns = (_AFTER_VERB_COUNT, _BEFORE_PICTURE_COUNT, _ENGLISH)
    found = [m for m in (p.search(text) for p in patterns) if m is not None]
    if not found:
        return 1
    first = min(found, key=lambda m: m.start())
    value = _value(first.group("n"))
    return min(value, CEILING) if value >= 1 else 1


def _value(number: str) -> int:
    """The value of ASCII digits, an English number word or a Chinese numeral up to 九十九 (past
    it, ``CEILING``); 0 for anything else."""
    if number.isascii() and number.isdigit():
        return min(int(number), CEILING) if len(number) <= 6 else CEILING
    word = _EN_WORDS.get(number.lower())
    if word is not None:
        return word
    return _chinese_value(number)


def _chinese_value(number: str) -> int:
    if _LARGE.intersection(number):
        return CEILING  # 「一百张」「一万张」: far past any limit
    tens, ten, ones = number.partition("十")
    if not ten:
        return _DIGITS.get(number, 0)
    if "十" in ones or len(tens) > 1 or len(ones) > 1:
        return 0  # not a numeral (「十十」): no count
    high = _DIGITS.get(tens, 0) if tens else 1
    low = _DIGITS.get(ones, 0) if ones else 0
    return high * 10 + low if high else 0
