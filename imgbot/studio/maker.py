"""What a chat request makes: a drawing from text, or an edit of the picture the user gave.

``Studio.make`` is the one call the bot runs per request. A text becomes ``pipeline.draw``; a
request with a picture fetches it (from DingTalk by its download code, or from our own bucket when
the user quoted one of the bot's replies, and only when that picture belongs to the request's
conversation) and becomes ``pipeline.edit``, which validates the bytes before any generator sees
them. Another conversation's picture is answered exactly like one that has expired. Failures
about the user's picture are ``PictureError`` values, so the bot answers each with its own
sentence.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol

from imgbot.errors import ImageError, PictureError, StorageError, UserPictureError
from imgbot.models import Aspect, ImageRequest, Origin, Published
from imgbot.objects.keys import key_label

log = logging.getLogger(__name__)
_GONE = frozenset({"NoSuchKey", "404", "AccessDenied", "ForeignKey", "NotYours"})


class EditingPipeline(Protocol):
    """The part of ``Pipeline`` the studio uses."""

    prefix: str

    @property
    def can_edit(self) -> bool:
        """True when the generator can edit a picture."""
        ...

    async def draw(
        self, prompt: str, origin: Origin | None = None, aspect: Aspect | None = None
    ) -> Published:
        """Generate from text (in ``aspect``'s shape, when given) and publish."""
        ...

    def draw_several(
        self, prompt: str, count: int, origin: Origin | None = None, aspect: Aspect | None = None
    ) -> AsyncGenerator[Published, None]:
        """Generate ``count`` pictures from text, publishing each as it comes."""
        ...

    async def edit(
        self, picture: bytes, instruction: str, origin: Origin, *, stored_as: str = ""
    ) -> Published:
        """Validate ``picture`` (storing it unless it is ours at ``stored_as``), edit it,
        publish the result."""
        ...

    async def stored_picture(self, key: str, conversation_id: str) -> bytes:
        """One of our own stored objects, if it belongs to ``conversation_id``."""
        ...


class PictureSource(Protocol):
    """Where pictures sent to the robot are fetched (``PictureDownloader``)."""

    async def fetch(self, download_code: str, robot_code: str = "") -> bytes:
        """The picture's bytes; raises ``PictureError``."""
        ...


class Studio:
    """Draws or edits for chat requests."""

    def __init__(self, pipeline: EditingPipeline, pictures: PictureSource) -> None:
        self._pipeline = pipeline
        self._pictures = pictures

    @property
    def can_edit(self) -> bool:
        """True when requests with a picture can be answered with an edit."""
        return self._pipeline.can_edit

    async def make(self, request: ImageRequest) -> Published:
        """The published picture ``request`` asks for."""
        if request.picture is None:
            return await self._pipeline.draw(request.prompt, request.origin, request.aspect)
        picture, stored_as = await self._picture(request)
        source = "stored" if stored_as else "download"
        log.info("msg %s: editing a picture (%s, %d bytes)", request.msg_id, source, len(picture))
        try:
            return await self._pipeline.edit(
                picture, request.prompt, request.origin, stored_as=stored_as
            )
        except UserPictureError as exc:
            # Say what is wrong with their picture; an unusable result is a plain ImageError and
            # gets the generated-picture sentence.
            raise picture_error(exc) from exc

    async def make_all(self, request: ImageRequest) -> AsyncGenerator[Published, None]:
        """The published pictures ``request`` asks for, each as it is ready: ``count`` drawings
        for a text (「画4张」), one picture for an edit or a single drawing."""
        if request.picture is not None or request.count <= 1:
            yield await self.make(request)
            return
        pictures = self._pipeline.draw_several(
            request.prompt, request.count, request.origin, request.aspect
        )
        async with aclosing(pictures):
            async for published in pictures:
                yield published

    async def _picture(self, request: ImageRequest) -> tuple[bytes, str]:
        """The picture to edit, and its key when it is one of ours ("" for a download)."""
        ref = request.picture
        assert ref is not None  # noqa: S101 (make() checked it)
        if ref.download_code:
            return await self._pictures.fetch(ref.download_code, request.robot_code), ""
        if not ref.stored:
            raise PictureError("the request names no picture", reason="missing")
        key = self._pipeline.prefix + ref.stored
        try:
            return await self._pipeline.stored_picture(key, request.conversation_id), key
        except StorageError as exc:
            # Logs name the key by label: it leads to the picture wherever links are public.
            log.info(
                "msg %s: quoted picture %s not readable (%s)",
                request.msg_id,
                key_label(key),
                exc.code,
            )
            log.debug("msg %s: quoted picture %s: %s", request.msg_id, key, exc)
            unreadable = f"quoted picture {key_label(key)} unavailable ({exc.code})"
            if exc.code == "TooLarge":
                raise PictureError(unreadable, reason="too_large") from None
            if exc.code in _GONE:
                # Most often the lifecycle rule has deleted it (the quoted link has expired too);
                # or it is another conversation's picture, answered the same way on purpose.
                raise PictureError(unreadable, reason="expired") from None
            message = str(exc).replace(key, key_label(key))
            raise StorageError(message, code=exc.code) from None


def picture_error(error: ImageError) -> PictureError:
    """What the bot answers for a user's picture that failed validation: its own reason, so the
    user is told what is wrong with it."""
    reason = error.kind if error.kind in PictureError.REASONS else "invalid"
    return PictureError(str(error), reason=reason)
