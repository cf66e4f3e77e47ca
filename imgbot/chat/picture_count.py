"""How many pictures a request's words ask for: 「画4张」, 「来三张小猫」, "4 images of a cat".

``picture_count`` is pure and bounded: it reads at most ``SCANNED_CHARS`` characters with
patterns free of nested repetition, and answers at most ``CEILING``. The words themselves are not
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
- Several counts: the first one that counts wins.
- Read as a count although it may name things: 「画三张桌子」 (three pictures); 「画一张三张桌子的
  图」 asks for one.
"""

from __future__ import annotations

import re
import unicodedata

SCANNED_CHARS = 2000
"""Only the start of a prompt is read: a count is said early (or the prompt is short)."""
CEILING = 999
"""The largest count answered; MAX_IMAGES_PER_REQUEST clips far below it."""

_DIGITS = "零一二三四五六七八九"
_CN_NUMBER = r"[一二两三四五六七八九十百千]{1,4}"
_VERBS = ("画", "来", "生成", "出", "做", "给我", "要")
# Python's look-behinds are of fixed width: one per verb, with and without a space after it
# (prompts arrive with their spaces folded to one).
_AFTER_VERB = "(?:" + "|".join(f"(?<={v})|(?<={v} )" for v in _VERBS) + ")"
_PICTURE_WORD = r"(?:图|图片|照片|壁纸|头像|插画|画)"
_PHRASE_END = r"(?:$|[\s，。,.!！?？;；、~～])"
_NUMBER = rf"(?P<n>\d{{1,6}}|{_CN_NUMBER})"
_AFTER_VERB_COUNT = re.compile(rf"(?<!第){_AFTER_VERB}{_NUMBER}\s?[张幅]")
_BEFORE_PICTURE_COUNT = re.compile(
    rf"(?<![\d一二两三四五六七八九十百千第]){_NUMBER}\s?[张幅](?={_PICTURE_WORD}|{_PHRASE_END})"
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
    rf"(?<![\w.:])(?P<n>\d{{1,6}}|{'|'.join(_EN_WORDS)})\s+"
    r"(?:different\s+|more\s+)?(?:images?|pictures?|pics?|photos?|drawings?|versions?|variations?)\b",
    re.IGNORECASE,
)


def picture_count(prompt: str) -> int:
    """How many pictures ``prompt`` asks for: 1 unless its words name a count (at most
    ``CEILING``)."""
    # NFKC folds full-width digits (「４张」) to ASCII ones.
    text = unicodedata.normalize("NFKC", prompt[:SCANNED_CHARS])
    patterns = (_AFTER_VERB_COUNT, _BEFORE_PICTURE_COUNT, _ENGLISH)
    found = [m for m in (p.search(text) for p in patterns) if m is not None]
    if not found:
        return 1
    first = min(found, key=lambda m: m.start())
    value = _value(first.group("n"))
    return min(value, CEILING) if value >= 1 else 1


def _value(number: str) -> int:
    """The value of ASCII digits, an English number word or a Chinese numeral up to 九十九."""
    if number.isdigit() and number.isascii():
        return int(number)
    word = _EN_WORDS.get(number.lower())
    if word is not None:
        return word
    return _chinese_value(number)


def _chinese_value(number: str) -> int:
    if "百" in number or "千" in number:
        return CEILING  # 「一百张」: far past any limit
    digits = number.replace("两", "二")
    if "十" not in digits:
        return _DIGITS.index(digits) if len(digits) == 1 else 0
    tens, _, ones = digits.partition("十")
    if "十" in ones or len(tens) > 1 or len(ones) > 1:
        return 0  # not a numeral (「十十」): no count
    return (_DIGITS.index(tens) if tens else 1) * 10 + (_DIGITS.index(ones) if ones else 0)
