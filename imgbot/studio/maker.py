"""What a chat request makes: a drawing from text, or an edit of the picture the user gave.

``Studio.make`` is the one call the bot runs per request. A text becomes ``pipeline.draw``; a
request with a picture fetches it (from DingTalk by its download code, or from our own bucket when
the user quoted one of the bot's replies) and becomes ``pipeline.edit``, which validates the bytes
before any generator sees them. Failures about the user's picture are ``PictureError`` values, so
the bot answers each with its own sentence.
"""

from __future__ import annotations

import logging
from typing import Protocol

from imgbot.errors import ImageError, PictureError, StorageError, UserPictureError
from imgbot.models import ImageRequest, Origin, Published

log = logging.getLogger(__name__)
_GONE = frozenset({"NoSuchKey", "404", "AccessDenied", "ForeignKey"})


class EditingPipeline(Protocol):
    """The part of ``Pipeline`` the studio uses."""

    prefix: str

    @property
    def can_edit(self) -> bool:
        """True when the generator can edit a picture."""
        ...

    async def draw(self, prompt: str, origin: Origin | None = None) -> Published:
        """Generate from text and publish."""
        ...

    async def edit(self, picture: bytes, instruction: str, origin: Origin) -> Published:
        """Validate and store ``picture``, edit it, publish the result."""
        ...

    async def stored_picture(self, key: str) -> bytes:
        """One of our own stored objects."""
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
            return await self._pipeline.draw(request.prompt, request.origin)
        picture = await self._picture(request)
        source = "download" if request.picture.download_code else "stored"
        log.info("msg %s: editing a picture (%s, %d bytes)", request.msg_id, source, len(picture))
        try:
            return await self._pipeline.edit(picture, request.prompt, request.origin)
        except UserPictureError as exc:
            # Say what is wrong with their picture; an unusable result is a plain ImageError and
            # gets the generated-picture sentence.
            raise PictureError(str(exc), reason=_image_reason(exc)) from exc

    async def _picture(self, request: ImageRequest) -> bytes:
        ref = request.picture
        assert ref is not None  # noqa: S101 (make() checked it)
        if ref.download_code:
            return await self._pictures.fetch(ref.download_code, request.robot_code)
        if not ref.stored:
            raise PictureError("the request names no picture", reason="missing")
        key = self._pipeline.prefix + ref.stored
        try:
            return await self._pipeline.stored_picture(key)
        except StorageError as exc:
            log.info("msg %s: quoted picture %s not readable: %s", request.msg_id, key, exc)
            if exc.code == "TooLarge":
                raise PictureError(str(exc), reason="too_large") from exc
            if exc.code in _GONE:
                # Most often the lifecycle rule has deleted it: the quoted link has expired too.
                raise PictureError(f"stored picture unavailable: {exc}", reason="expired") from exc
            raise


def _image_reason(error: ImageError) -> str:
    """The ``PictureError`` reason for a user's picture that failed validation."""
    return error.kind if error.kind in PictureError.REASONS else "invalid"
