"""Frozen domain values passed between the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal


@dataclass(frozen=True, slots=True)
class Size:
    """Width and height in pixels."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Aspect:
    """The shape a request's words ask for, as a width-to-height ratio such as 16:9."""

    width: int
    height: int

    @property
    def ratio(self) -> float:
        """Width over height."""
        return self.width / self.height

    def __str__(self) -> str:
        return f"{self.width}:{self.height}"


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """Encoded image bytes as a generator returned them."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EditSpec:
    """What a generator's edit API takes as its input picture; ``prepare_edit`` fits to it.

    Sides are in pixels and bound both width and height; ``square`` asks for one square picture
    (dall-e-2); ``format`` is the encoding sent.
    """

    min_side: int
    max_side: int
    max_bytes: int
    square: bool = False
    format: Literal["PNG", "JPEG"] = "PNG"

    def __post_init__(self) -> None:
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError("EditSpec needs 1 <= min_side <= max_side")
        if self.max_bytes < 1024:
            raise ValueError("EditSpec.max_bytes must be at least 1024")


@dataclass(frozen=True, slots=True)
class Rendition:
    """One stored form of an image: its bytes, extension and media type."""

    data: bytes
    ext: str
    content_type: str


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """An image made ready to store: the original without metadata, and its preview.

    ``preview`` is ``original`` itself when the chat should show the original (it is lighter).
    """

    original: Rendition
    preview: Rendition

    @property
    def preview_is_original(self) -> bool:
        """True when the chat shows the original: one object is stored, not two."""
        return self.preview == self.original


@dataclass(frozen=True, slots=True)
class Link:
    """A URL for one stored object; ``expires_at`` is None for permanent public links."""

    url: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Published:
    """What publishing an image produced: both keys and their links.

    ``preview`` is the preview's rendition as it was stored, for a reply that sends the bytes
    themselves (DINGTALK_MEDIA_UPLOAD) without reading them back from storage; None where no
    bytes are at hand.
    """

    key: str
    preview_key: str
    preview_link: Link
    original_link: Link
    preview: Rendition | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RecentImage:
    """One of a sender's recent pictures as 「我的图片」 lists it: fresh links, its prompt, when
    it was made."""

    published: Published
    prompt: str
    made_at: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a picture came from: the prompt and, for chat requests, the DingTalk message."""

    prompt: str = ""
    msg_id: str = ""
    conversation_id: str = ""
    sender_staff_id: str = ""
    sender: str = ""
    """Who asked, as limits count them (``ImageRequest.sender``); not stored on objects."""


@dataclass(frozen=True, slots=True)
class PictureRef:
    """Where the picture a user wants edited is: a DingTalk download code, or one of our objects.

    Plain strings only: a request is stored as a durable job, so no bytes and no URL that expires
    soon. ``download_code`` is the message's ``downloadCode`` (never ``pictureDownloadCode``);
    ``stored`` is an object key *without* S3_PREFIX (``yyyy/mm/dd/token.ext``), read from the link
    of one of the bot's own replies that the user quoted (the studio puts the prefix in front).
    """

    download_code: str = ""
    stored: str = ""


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """A user's request for a picture, parsed from a chat message."""

    prompt: str
    msg_id: str
    conversation_id: str
    conversation_type: str
    sender_id: str
    sender_staff_id: str
    session_webhook: str
    webhook_expires_at_ms: int
    robot_code: str
    message_type: str = "text"
    picture: PictureRef | None = None
    """The picture to edit with ``prompt`` as the instruction; None for a drawing."""
    quote_unreadable: bool = False
    """The text quotes a message whose content DingTalk did not include (only its id)."""
    sender_nick: str = ""
    """The sender's display name (``senderNick``), for a card's @-mention; may be empty."""
    asked: int = 1
    """Pictures the words ask for (``chat.picture_count``: 「画4张」), before any limit; 1 for
    an edit."""
    count: int = 1
    """Pictures to make: ``asked`` within MAX_IMAGES_PER_REQUEST and what the sender's rate
    leaves. Set by admission, so a request that did not pass it makes one."""
    fewer_because: Literal["", "max", "rate"] = ""
    """Why ``count`` is below ``asked``: the per-message maximum, or the sender's rate."""
    aspect: Aspect | None = None
    """The shape the words ask for (``chat.aspect``); None draws IMAGE_SIZE."""

    @property
    def is_group(self) -> bool:
        """True for group conversations (DingTalk conversationType "2")."""
        return self.conversation_type == "2"

    @property
    def sender(self) -> str:
        """Who sent the request, as its limits count it: DingTalk's sender id, else the staff
        id, else (neither given) the conversation."""
        return self.sender_id or self.sender_staff_id or self.conversation_id

    @property
    def mentioned_staff_ids(self) -> list[str]:
        """Who a reply @-mentions: the sender, in a group, when DingTalk gave a staff id."""
        return [self.sender_staff_id] if self.is_group and self.sender_staff_id else []

    @property
    def mention(self) -> str:
        """``@staffId`` for the start of a group reply's text, else empty (DingTalk shows the
        mention only when the text names it as well as ``at.atUserIds``)."""
        return " ".join(f"@{staff_id}" for staff_id in self.mentioned_staff_ids)

    @property
    def mentioned_names(self) -> dict[str, str]:
        """A card's ``atUserIds``: each mentioned staff id with the name DingTalk shows for it
        (the sender's nick, else the staff id)."""
        return {staff: self.sender_nick or staff for staff in self.mentioned_staff_ids}

    @property
    def origin(self) -> Origin:
        """What is recorded on the stored objects about this request."""
        return Origin(
            self.prompt, self.msg_id, self.conversation_id, self.sender_staff_id, self.sender
        )


class Outcome(StrEnum):
    """How one message ended, as counted in ``imgbot_messages_total{outcome=…}``."""

    ACCEPTED = "accepted"
    """Admitted as a job; the job's own outcome is counted when it ends."""
    IMAGE = "image"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    """Another worker's claim of the job owned the final reply; this one posted nothing."""
    GAVE_UP = "gave_up"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    RATE_LIMITED_QUIET = "rate_limited_quiet"
    """Past the rate limit again within the window: counted, not answered."""
    BUSY = "busy"
    STORE_DOWN = "store_down"
    NOT_TEXT = "not_text"
    EMPTY = "empty"
    HELP = "help"
    TOO_LONG = "too_long"
    PICTURE_ALONE = "picture_alone"
    QUOTE_UNREADABLE = "quote_unreadable"
    PICTURE_MISSING = "picture_missing"
    EDIT_UNAVAILABLE = "edit_unavailable"
    MY_IMAGES = "my_images"
    """「我的图片」: answered with the sender's recent pictures (or that there are none)."""
    MODERATED = "moderated"
    """Refused for its content: by BLOCKED_WORDS_FILE before any provider call, or by the
    provider's own moderation (never retried), including a message of several pictures whose
    first ones were made and posted while the rest were refused."""
