"""Pillow modes as a chat client shows them: 16-bit grey in 8 bits, transparency laid on white.

One definition for the preview (``renditions``) and the picture sent to an edit API (``fitting``).
"""

from __future__ import annotations

from PIL import Image

_SIXTEEN_BIT = frozenset({"I", "I;16", "I;16B", "I;16L", "F"})
_WITH_ALPHA = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WHITE = (255, 255, 255)


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 16-bit (or 32-bit) grey scaled to 8 bits; a plain convert would clip every
    value above 255 to white. Other modes are returned as they are."""
    if image.mode in _SIXTEEN_BIT:
        return image.convert("F").point(lambda v: v / 257).convert("L")
    return image


def has_alpha(image: Image.Image) -> bool:
    """Whether ``image`` has transparency: an alpha band, or a transparent colour or index."""
    return image.mode in _WITH_ALPHA or "transparency" in image.info


def on_white(image: Image.Image) -> Image.Image:
    """An RGB copy of ``image`` with its transparency laid on white."""
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, _WHITE)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
