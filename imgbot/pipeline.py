"""The one async pipeline: bytes → validated renditions → stored objects → links.

``publish`` and ``draw`` here are what the CLI commands and the bot both run. Pillow and boto3
are synchronous; they run in worker threads so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from imgbot.config import Settings
from imgbot.errors import GeneratorTimeout, StorageError
from imgbot.generators import Generator
from imgbot.imaging import ImageLimits, prepare
from imgbot.inspection import object_metadata
from imgbot.keys import object_keys
from imgbot.models import Origin, PreparedImage, Published, Rendition, Size
from imgbot.observe import NoObserver, Observer
from imgbot.presign import Presigner
from imgbot.storage_s3 import S3Storage

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """Everything publishing needs, built once and shared by every request."""

    storage: S3Storage
    presigner: Presigner
    generator: Generator
    limits: ImageLimits
    prefix: str
    generator_timeout: float
    image_size: Size
    observer: Observer

    @classmethod
    def from_settings(
        cls, settings: Settings, generator: Generator, *, observer: Observer | None = None
    ) -> Pipeline:
        """Build storage and presigner clients once, from settings."""
        return cls(
            storage=S3Storage.from_settings(settings),
            presigner=Presigner.from_settings(settings),
            generator=generator,
            limits=limits_from(settings),
            prefix=settings.s3_prefix,
            generator_timeout=settings.generator_timeout_seconds,
            image_size=settings.size,
            observer=observer or NoObserver(),
        )

    async def draw(self, prompt: str, origin: Origin | None = None) -> Published:
        """Generate a picture for ``prompt`` and publish it, recording ``origin`` on the objects."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.generator_timeout):
                image = await self.generator.generate(prompt, self.image_size)
        except TimeoutError:
            raise GeneratorTimeout(
                f"{self.generator.name} did not finish within {self.generator_timeout:g} s",
                reason="timeout",
            ) from None
        self.observer.stage("generate", time.perf_counter() - started)
        metadata = object_metadata(
            origin or Origin(prompt), self.generator.name, self.generator.model
        )
        return await self.publish(image.data, metadata)

    async def publish(self, data: bytes, metadata: dict[str, str] | None = None) -> Published:
        """Validate ``data``, store the original and its preview with ``metadata``, and return
        their links."""
        started = time.perf_counter()
        prepared = await asyncio.to_thread(prepare, data, self.limits)
        self.observer.stage("prepare", time.perf_counter() - started)
        key, preview_key = object_keys(
            self.prefix, datetime.now(UTC), prepared.original.ext, prepared.preview.ext
        )
        if prepared.preview_is_original:
            preview_key = key  # the chat shows the original: one object, one link
        started = time.perf_counter()
        await self._store(prepared, key, preview_key, metadata or {})
        self.observer.stage("upload", time.perf_counter() - started)
        log.info(
            "stored %s (%d bytes) and preview (%d bytes)",
            key,
            len(prepared.original.data),
            len(prepared.preview.data),
        )
        original_link = self.presigner.link(key)
        return Published(
            key=key,
            preview_key=preview_key,
            preview_link=original_link if preview_key == key else self.presigner.link(preview_key),
            original_link=original_link,
        )

    async def _store(
        self, prepared: PreparedImage, key: str, preview_key: str, metadata: dict[str, str]
    ) -> None:
        # Original and preview go up concurrently: boto3 clients are thread-safe.
        renditions = {key: prepared.original, preview_key: prepared.preview}
        try:
            await asyncio.gather(
                *(asyncio.to_thread(self._put, k, r, metadata) for k, r in renditions.items())
            )
        except StorageError:
            self.observer.storage_failed()
            raise
        self.observer.stored(sum(len(r.data) for r in renditions.values()))

    def _put(self, key: str, rendition: Rendition, metadata: dict[str, str]) -> None:
        filename = key.rsplit("/", 1)[-1]
        self.storage.put(
            key,
            rendition.data,
            content_type=rendition.content_type,
            cache_control=self.cache_control(),
            content_disposition=f'inline; filename="{filename}"',
            metadata=metadata,
        )

    def cache_control(self) -> str:
        """Cache-Control for stored objects: private for signed links, immutable when public."""
        if self.presigner.is_public:
            return f"public, max-age={self.presigner.ttl}, immutable"
        return f"private, max-age={self.presigner.ttl}"

    async def aclose(self) -> None:
        """Release the generator's connections."""
        await self.generator.aclose()


def limits_from(settings: Settings) -> ImageLimits:
    """The image limits named in settings."""
    return ImageLimits(
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        preview_max_side=settings.preview_max_side,
        preview_format=settings.preview_format,
        preview_quality=settings.preview_quality,
    )
