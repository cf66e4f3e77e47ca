"""Image generators behind one small seam: ``Generator.generate(prompt, size) -> bytes``."""

from __future__ import annotations

from imgbot.generators.base import Generator, build_generator

__all__ = ["Generator", "build_generator"]
