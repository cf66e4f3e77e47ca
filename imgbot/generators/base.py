"""The generator seam and the factory that picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from imgbot.config.settings import Settings
from imgbot.errors import ConfigError, GeneratorError
from imgbot.models import EditSpec, GeneratedImage, Size
from imgbot.observe import Observer

if TYPE_CHECKING:
    from imgbot.generators.http import HttpLimits


class PartlyRefused(GeneratorError):
    """One provider call made some of its pictures and refused the rest for their content:
    ``images`` are those made; the error is ``moderated`` (the rest must not be asked again)."""

    def __init__(self, message: str, images: list[GeneratedImage], *, reason: str = "") -> None:
        super().__init__(message, reason=reason, moderated=True)
        self.images = images


class Generator(Protocol):
    """Turns a prompt into encoded image bytes (PNG, JPEG or WebP), and may edit a picture."""

    name: str
    """Which generator this is (IMAGE_GENERATOR's value)."""
    model: str
    """The provider's model name, or empty when there is none."""
    edits: EditSpec | None
    """What the edit API takes as its input picture; None when this generator cannot edit."""
    edit_model: str
    """The provider's model for edits, or empty when there is none."""
    max_n: int
    """Most pictures one provider call makes (the provider's ``n``); 1 where it has none, and
    several pictures are then several calls of ``generate``."""

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Return the picture for ``prompt``; raise GeneratorError when the provider fails."""
        ...

    async def generate_many(self, prompt: str, size: Size, n: int) -> list[GeneratedImage]:
        """Return up to ``n`` (at most ``max_n``) pictures for ``prompt`` from one provider call;
        fewer when the provider made fewer; raise GeneratorError when it made none, and
        ``PartlyRefused`` (holding those made) when it refused some for their content."""
        ...

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Return ``picture`` changed as ``instruction`` says; raise GeneratorError on failure.

        ``picture`` is already validated and fitted to ``edits`` (``renditions.prepare_edit``);
        ``size`` is its size in pixels. Only called when ``edits`` is not None.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def build_generator(settings: Settings, observer: Observer | None = None) -> Generator:
    """Return the generator IMAGE_GENERATOR names, checking the keys it needs.

    ``observer`` hears of the generator's retries (metrics).
    """
    if settings.image_generator == "placeholder":
        from imgbot.generators.placeholder import PlaceholderGenerator

        return PlaceholderGenerator()
    if settings.image_generator == "dashscope":
        from imgbot.generators.dashscope import DashScopeGenerator

        return DashScopeGenerator(
            api_key=_required(settings.dashscope_api_key, "DASHSCOPE_API_KEY"),
            base_url=settings.dashscope_base_url,  # checked by Settings
            model=settings.dashscope_model,
            edit_model=settings.dashscope_edit_model,
            negative_prompt=settings.dashscope_negative_prompt or "",
            prompt_extend=settings.dashscope_prompt_extend,
            watermark=settings.dashscope_watermark,
            # Each DashScope call is short (submit, poll, download); the task itself takes long.
            limits=_limits(settings, call_timeout=min(30.0, settings.generator_timeout_seconds)),
            observer=observer,
        )
    if settings.image_generator == "openai":
        from imgbot.generators.openai_images import OpenAIImagesGenerator

        return OpenAIImagesGenerator(
            api_key=_required(settings.openai_api_key, "OPENAI_API_KEY"),
            base_url=settings.openai_base_url,  # checked by Settings
            model=settings.openai_image_model,
            edit_model=settings.openai_edit_model or "",
            quality=settings.openai_image_quality,
            output_format=settings.openai_output_format,
            output_compression=settings.openai_output_compression,
            # The images API answers only when the picture is done: one call may take it all.
            limits=_limits(settings, call_timeout=settings.generator_timeout_seconds),
            observer=observer,
        )
    raise ConfigError("IMAGE_GENERATOR", f"{settings.image_generator!r} is not available yet")


def _required(key: SecretStr | None, name: str) -> SecretStr:
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(name, "required for this IMAGE_GENERATOR")
    return key


def _limits(settings: Settings, *, call_timeout: float) -> HttpLimits:
    from imgbot.generators.http import HttpLimits

    return HttpLimits(
        call_timeout=call_timeout,
        total_timeout=settings.generator_timeout_seconds,
        max_bytes=settings.max_image_bytes,
        attempts=settings.generator_attempts,
    )
