"""Each sender's recent pictures in a conversation (「我的图片」): recorded once the answer is
posted, listed with fresh links.

The bot's storage user cannot list the bucket (by design: its policy allows reading and writing
objects only), so the state store keeps an index per sender and conversation: the newest
MY_IMAGES_SHOWN pictures, each for as long as the lifecycle rule keeps its objects, less
``MARGIN_SECONDS``. The rule deletes an object at the first midnight UTC at least
IMAGE_RETENTION_DAYS after its upload, and the index records a picture after its upload, so an
entry ends before its objects do and a listed link never answers 404. Links come from the
presigner, as for a new picture, and never outlive their object.

A message whose sender DingTalk did not name (neither ``senderId`` nor ``senderStaffId``) is
neither recorded nor listed: its sender would be the conversation, and a whole group would share
one list. Such a sender is told they have no pictures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from imgbot.config.settings import Settings
from imgbot.models import ImageRequest, Published, RecentImage
from imgbot.presign import Presigner
from imgbot.state import ImageEntry, StateStore

MARGIN_SECONDS = 3600.0
"""How long before the retention ends an entry leaves the index: room for the store's clock and
the storage's to differ."""
PROMPT_KEPT_CHARS = 100
"""The start of the prompt kept beside each entry (the list shows less)."""


@dataclass(frozen=True, slots=True)
class GalleryRules:
    """How many pictures are listed, and how long they live."""

    shown: int
    """MY_IMAGES_SHOWN: listed, and kept, per sender and conversation."""
    retention_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> GalleryRules:
        """The rules named in settings."""
        return cls(shown=settings.my_images_shown, retention_days=settings.image_retention_days)

    @property
    def max_age_seconds(self) -> float:
        """How long an entry is listed: the retention less the margin."""
        return max(60.0, self.retention_days * 86_400 - MARGIN_SECONDS)


class Gallery:
    """The index of senders' recent pictures, in the state store, and their fresh links."""

    def __init__(
        self,
        store: StateStore,
        presigner: Presigner,
        rules: GalleryRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._presigner = presigner
        self._rules = rules
        self._clock = clock

    async def record(self, request: ImageRequest, published: Published) -> None:
        """Add the picture answered to ``request`` to its sender's list in its conversation;
        raises ``StoreUnavailable``. Nothing is recorded for a sender DingTalk did not name."""
        if not _named(request):
            return
        entry = ImageEntry(published.key, published.preview_key, request.prompt[:PROMPT_KEPT_CHARS])
        await self._store.remember_image(
            request.sender,
            request.conversation_id,
            entry,
            keep=self._rules.shown,
            max_age_seconds=self._rules.max_age_seconds,
        )

    async def recent(self, request: ImageRequest) -> list[RecentImage]:
        """The sender's newest pictures in the request's conversation, newest first, each with
        links that end no later than the entry (none for a sender DingTalk did not name);
        raises ``StoreUnavailable``."""
        if not _named(request):
            return []
        entries = await self._store.recent_images(
            request.sender,
            request.conversation_id,
            limit=self._rules.shown,
            max_age_seconds=self._rules.max_age_seconds,
        )
        now = self._clock()
        shown = []
        for entry in entries:
            left = int(entry.made_at + self._rules.max_age_seconds - now)
            if left >= 1:
                shown.append(self._shown(entry, left))
        return shown

    def _shown(self, entry: ImageEntry, seconds: int) -> RecentImage:
        original = self._presigner.link(entry.key, seconds)
        same = entry.preview_key == entry.key
        preview = original if same else self._presigner.link(entry.preview_key, seconds)
        published = Published(entry.key, entry.preview_key, preview, original)
        return RecentImage(published, entry.prompt, datetime.fromtimestamp(entry.made_at, UTC))


def _named(request: ImageRequest) -> bool:
    """True when DingTalk named the request's sender (not only its conversation)."""
    return bool(request.sender_id or request.sender_staff_id)
