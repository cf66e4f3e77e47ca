"""The one async pipeline: bytes → validated renditions → stored objects → links.

``publish``, ``draw`` and ``edit`` here are what the CLI commands and the bot run. Pillow and boto3
are synchronous; they run in worker threads so the event loop never blocks, except users' pictures
to edit: those are validated in child processes (``imgbot.images.workers``), bounded in CPU time
and stopped when their request stops waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from imgbot.config.settings import Settings
from imgbot.errors import (
    EditUnavailable,
    GeneratorError,
    GeneratorTimeout,
    ImageError,
    StorageError,
    UserPictureError,
)
from imgbot.generators import Generator
from imgbot.generators.base import PartlyRefused
from imgbot.generators.sizes import wanted_size
from imgbot.images.renditions import ImageLimits, prepare
from imgbot.images.workers import PictureWorkers
from imgbot.models import Aspect, Origin, Published, Rendition, Size
from imgbot.objects.keys import is_our_key, key_label, object_keys
from imgbot.objects.metadata import USER, object_metadata, owner_metadata
from imgbot.observe import NoObserver, Observer
from imgbot.presign import Presigner
from imgbot.storage_s3 import S3Storage

log = logging.getLogger(__name__)
T = TypeVar("T")


def _one_thread() -> ThreadPoolExecutor:
    """One thread for making the renditions of pictures to publish, in turn: glibc keeps a
    thread's freed memory in that thread's own arena, so decoding in several threads leaves one
    peak resident per thread (BENCHMARKS.md, "Editing users' pictures: peak memory")."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgbot-renditions")


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
    intake: PictureWorkers
    """Where users' pictures are validated: in child processes, bounded and taking turns."""
    renditions: ThreadPoolExecutor = field(default_factory=_one_thread)
    """Where pictures to publish are validated and their previews made (see ``_one_thread``)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        generator: Generator,
        *,
        storage: S3Storage | None = None,
        observer: Observer | None = None,
    ) -> Pipeline:
        """Build storage (unless given) and presigner clients once, from settings."""
        return cls(
            storage=storage or S3Storage.from_settings(settings),
            presigner=Presigner.from_settings(settings),
            generator=generator,
            limits=limits_from(settings),
            prefix=settings.s3_prefix,
            generator_timeout=settings.generator_timeout_seconds,
            image_size=settings.size,
            observer=observer or NoObserver(),
            intake=PictureWorkers(
                slots=settings.picture_workers, cpu_seconds=settings.picture_cpu_seconds
            ),
        )

    async def draw(
        self, prompt: str, origin: Origin | None = None, aspect: Aspect | None = None
    ) -> Published:
        """Generate a picture for ``prompt`` and publish it, recording ``origin`` on the objects.

        The generator is given IMAGE_SIZE, or its area in ``aspect`` (what the words asked
        for), and asks its model for the size it takes nearest that.
        """
        wanted = wanted_size(self.image_size, aspect)
        if aspect is not None:
            log.info("the words ask for %s: wanting %s", aspect, wanted)
        image = await self._generated(self.generator.generate(prompt, wanted))
        metadata = object_metadata(
            origin or Origin(prompt), self.generator.name, self.generator.model
        )
        return await self.publish(image.data, metadata)

    async def draw_several(
        self, prompt: str, count: int, origin: Origin | None = None, aspect: Aspect | None = None
    ) -> AsyncGenerator[Published, None]:
        """Generate ``count`` pictures for ``prompt`` and publish each as it comes.

        Provider calls ask for at most the generator's ``max_n`` pictures (its ``n``; several
        calls where it has none), one call after another, each within GENERATOR_TIMEOUT_SECONDS;
        a call's pictures are published in turn and let go one by one, so memory holds one
        call's answer at most. A call that made fewer pictures than asked is not repeated: the
        caller sees fewer; one that refused some for their content (``PartlyRefused``) has its
        pictures published, then ends the drawing with a moderated ``GeneratorError``. The size is
        chosen as ``draw`` chooses it.
        """
        wanted = wanted_size(self.image_size, aspect)
        metadata = object_metadata(
            origin or Origin(prompt), self.generator.name, self.generator.model
        )
        left = count
        while left > 0:
            n = min(left, self.generator.max_n)
            left -= n
            refused: GeneratorError | None = None
            if n == 1:
                images = [await self._generated(self.generator.generate(prompt, wanted))]
            else:
                try:
                    images = await self._generated(self.generator.generate_many(prompt, wanted, n))
                except PartlyRefused as exc:
                    images, refused = exc.images, exc
            images.reverse()
            while images:
                yield await self.publish(images.pop().data, metadata)
            if refused is not None:
                # The pictures made are published; the rest were refused for their content.
                raise GeneratorError(str(refused), reason=refused.reason, moderated=True)

    @property
    def can_edit(self) -> bool:
        """True when the configured generator can edit a user's picture."""
        return self.generator.edits is not None

    async def edit(
        self, picture: bytes, instruction: str, origin: Origin, *, stored_as: str = ""
    ) -> Published:
        """Change the user's ``picture`` as ``instruction`` says and publish the result.

        The picture is validated like any upload (``UserPictureError`` before a generator sees a
        byte), fitted to the generator's ``EditSpec`` and edited. A picture the user sent is
        stored under the prefix first (without its metadata, labelled an upload of ``origin``);
        one of ours (``stored_as``, its key, read by ``stored_picture``) is not stored again.
        The result's metadata names the stored key it was made from (``edit-of``).
        """
        spec = self.generator.edits
        if spec is None:
            raise EditUnavailable(
                f"{self.generator.name} cannot edit pictures", reason="editing not available"
            )
        started = time.perf_counter()
        # Turns are taken per sender, as the rate limit counts them.
        owner = origin.sender or origin.sender_staff_id or origin.conversation_id
        try:
            intake = await self.intake.edit_input(
                picture, self.limits, spec, owner=owner, wall_seconds=self.generator_timeout
            )
        except ImageError as exc:
            raise UserPictureError(str(exc), kind=exc.kind) from None
        self.observer.stage("prepare", time.perf_counter() - started)
        source_key = stored_as
        if not source_key:
            source_key = object_keys(self.prefix, datetime.now(UTC), intake.original.ext, "jpg")[0]
            await self._store({source_key: intake.original}, object_metadata(origin, USER, ""))
            size = len(intake.original.data)
            log.info("stored the picture to edit as %s (%d bytes)", key_label(source_key), size)
            log.debug("the picture to edit is %s", source_key)
        edit = self.generator.edit(intake.fitted, instruction, intake.size)
        del intake  # the fitted copy is the generator's now; let the original go before publishing
        image = await self._generated(edit)
        metadata = object_metadata(
            origin, self.generator.name, self.generator.edit_model, edit_of=source_key
        )
        return await self.publish(image.data, metadata)

    async def stored_picture(self, key: str, conversation_id: str) -> bytes:
        """The bytes of one of our own stored pictures (a bot image a user quoted), for a
        request from ``conversation_id``.

        Only keys of our shape under S3_PREFIX are read (``StorageError`` code ``ForeignKey``
        otherwise); only a picture whose metadata names ``conversation_id`` (code ``NotYours``
        otherwise, also for pictures stored without a conversation, and decided before its
        bytes are read); at most MAX_IMAGE_BYTES (code ``TooLarge``). A missing or expired one
        is ``NoSuchKey`` (or ``AccessDenied`` on AWS S3).
        """
        if not is_our_key(self.prefix, key):
            raise StorageError(
                f"{key[:100]!r} is not one of our stored pictures", code="ForeignKey"
            )
        not_yours = StorageError(
            f"{key_label(key)} belongs to another conversation or to none", code="NotYours"
        )
        if not conversation_id:
            raise not_yours
        try:
            return await asyncio.to_thread(
                self.storage.get,
                key,
                self.limits.max_bytes,
                require_metadata=owner_metadata(conversation_id),
            )
        except StorageError as exc:
            if exc.code == "MetadataMismatch":
                raise not_yours from None
            raise

    async def _generated(self, work: Awaitable[T]) -> T:
        """``work``'s picture(s), within GENERATOR_TIMEOUT_SECONDS."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.generator_timeout):
                image = await work
        except TimeoutError:
            raise GeneratorTimeout(
                f"{self.generator.name} did not finish within {self.generator_timeout:g} s",
                reason="timeout",
            ) from None
        self.observer.stage("generate", time.perf_counter() - started)
        return image

    async def publish(self, data: bytes, metadata: dict[str, str] | None = None) -> Published:
        """Validate ``data``, store the original and its preview with ``metadata``, and return
        their links."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self.renditions, prepare, data, self.limits)
        self.observer.stage("prepare", time.perf_counter() - started)
        key, preview_key = object_keys(
            self.prefix, datetime.now(UTC), prepared.original.ext, prepared.preview.ext
        )
        if prepared.preview_is_original:
            preview_key = key  # the chat shows the original: one object, one link
        started = time.perf_counter()
        renditions = {key: prepared.original, preview_key: prepared.preview}
        await self._store(renditions, metadata or {})
        self.observer.stage("upload", time.perf_counter() - started)
        log.info(
            "stored %s (%d bytes) and preview (%d bytes)",
            key_label(key),
            len(prepared.original.data),
            len(prepared.preview.data),
        )
        log.debug("stored %s and %s", key, preview_key)
        original_link = self.presigner.link(key)
        return Published(
            key=key,
            preview_key=preview_key,
            preview_link=original_link if preview_key == key else self.presigner.link(preview_key),
            original_link=original_link,
            preview=prepared.preview,
        )

    async def _store(self, renditions: dict[str, Rendition], metadata: dict[str, str]) -> None:
        # Original and preview go up concurrently: boto3 clients are thread-safe.
        try:
            await asyncio.gather(
                *(asyncio.to_thread(self._put, k, r, metadata) for k, r in renditions.items())
            )
        except StorageError:
            self.observer.upload_failed()
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
        max_jpeg_scans=settings.max_jpeg_scans,
        cpu_seconds=settings.picture_cpu_seconds,
    )
