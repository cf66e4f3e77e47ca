"""The generator seam and the factory that picks one from settings."""

from __future__ import annotations

from typing import Protocol

from imgbot.config import Settings
from imgbot.errors import ConfigError
from imgbot.models import GeneratedImage, Size


class Generator(Protocol):
    """Turns a prompt into encoded image bytes (PNG, JPEG or WebP)."""

    name: str

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Return the picture for ``prompt``; raise GeneratorError when the provider fails."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def build_generator(settings: Settings) -> Generator:
    """Return the generator IMAGE_GENERATOR names, checking the keys it needs."""
    if settings.image_generator == "placeholder":
        from imgbot.generators.placeholder import PlaceholderGenerator

        return PlaceholderGenerator()
    raise ConfigError("IMAGE_GENERATOR", f"{settings.image_generator!r} is not available yet")
