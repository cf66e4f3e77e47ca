"""Picture sizes: the one a request wants, and the one a model is asked for.

The pipeline turns IMAGE_SIZE and the aspect the words asked for into a wanted size
(``wanted_size``: IMAGE_SIZE's area in that shape). Each generator owns a ``SizeRule`` for its
model, from the provider's documentation, and asks for ``rule.fit(wanted)``: the wanted size
itself when the model takes it, else the allowed size nearest its aspect (then its area).
Without an aspect the wanted size is IMAGE_SIZE, so a model that takes IMAGE_SIZE gets it as
before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from imgbot.models import Aspect, Size

STEP = 16
"""Sides computed here are multiples of this (every documented size is)."""


@dataclass(frozen=True, slots=True)
class SizeRule:
    """The sizes one model takes: a list, a range, or both (then the list is chosen from)."""

    sizes: tuple[Size, ...] = ()
    """Sizes the model documents; when given, a size it does not take is replaced by one of
    these."""
    sides: tuple[int, int] | None = None
    """Width and height each within [low, high]; None when only ``sizes`` are taken."""
    area: tuple[int, int] = (1, 2**31)
    """Width x height within [low, high] (with ``sides``)."""
    max_ratio: float = 4.0
    """Longest side over shortest at most this (with ``sides``)."""

    def takes(self, size: Size) -> bool:
        """True when the model takes ``size`` as it is."""
        if size in self.sizes:
            return True
        if self.sides is None:
            return False
        low, high = self.sides
        long, short = max(size.width, size.height), min(size.width, size.height)
        return (
            low <= short
            and long <= high
            and self.area[0] <= size.width * size.height <= self.area[1]
            and long <= short * self.max_ratio
        )

    def fit(self, wanted: Size) -> Size:
        """``wanted`` when the model takes it, else the size it takes nearest in aspect, then
        in area."""
        if self.takes(wanted):
            return wanted
        candidates = list(self.sizes) if self.sizes else self._range_candidates(wanted)
        return min(candidates, key=lambda size: _distance(size, wanted)) if candidates else wanted

    def _range_candidates(self, wanted: Size) -> list[Size]:
        """For each height of the range (in steps), the widths around the wanted aspect that
        the range takes: a few hundred sizes at most."""
        assert self.sides is not None  # noqa: S101 (no sizes, so a range)
        low, high = self.sides
        ratio = min(max(wanted.width / wanted.height, 1 / self.max_ratio), self.max_ratio)
        found = []
        for height in range(_up(low), high + 1, STEP):
            width = height * ratio
            for side in {_down(width), _up(width)}:
                size = Size(side, height)
                if side >= STEP and self.takes(size):
                    found.append(size)
        return found


def _distance(size: Size, wanted: Size) -> tuple[float, float]:
    shape = abs(math.log((size.width / size.height) / (wanted.width / wanted.height)))
    area = abs(math.log((size.width * size.height) / (wanted.width * wanted.height)))
    return round(shape, 6), area


def _up(value: float) -> int:
    return math.ceil(value / STEP) * STEP


def _down(value: float) -> int:
    return max(STEP, math.floor(value / STEP) * STEP)


def wanted_size(default: Size, aspect: Aspect | None) -> Size:
    """The size a request wants: ``default`` (IMAGE_SIZE), or its area in ``aspect``'s shape
    (sides rounded to multiples of 16, at least 64)."""
    if aspect is None:
        return default
    area = default.width * default.height
    width = math.sqrt(area * aspect.ratio)
    return Size(max(64, round(width / STEP) * STEP), max(64, round(area / width / STEP) * STEP))
