"""The one exception tree of imgbot; every message is safe to show to a user or a log.

    ImgbotError
    ├── ConfigError        a setting is missing or wrong (exit code 2); names the key
    │   └── UsageError     a command-line argument is wrong (exit code 2); names it
    ├── ImageError         bytes are not an acceptable image (format, size, pixels)
    │   └── UserPictureError  the picture a user gave to edit is not acceptable
    ├── GeneratorError     the image generator failed; ``reason`` is the provider's own words
    │   ├── GeneratorTimeout
    │   ├── PartlyRefused  (generators.base) some pictures made, the rest refused for content
    │   └── EditUnavailable  the configured generator cannot edit pictures
    ├── StorageError       object storage refused or could not be reached
    │   ├── LeaseHeld      (bucket.admin) another caller holds the lease (creating the bot user)
    │   ├── LifecycleUnsupported  (bucket.admin) the server has no lifecycle API
    │   └── UsageUnavailable  (bucket.usage) the server offers no usage figures to these keys
    ├── ReplyError         a DingTalk reply could not be delivered
    │   ├── CardRefused    (dingtalk.cards) DingTalk refused a card call, or the card API is paused
    │   └── TokenRefused   (dingtalk.answers) DingTalk refused the access token (HTTP 401, errcode)
    ├── PictureError       a user's picture could not be fetched from DingTalk; ``reason`` says why
    ├── StoreUnavailable   (state) the state store did not answer
    │   └── StoreNotReady  (state) doctor found no store file yet: the bot makes it at start
    ├── StoreInUse         (state) the SQLite state file is held by another bot process
    ├── ConnectionLost     (bot) the DingTalk stream closed soon after it opened
    ├── MalformedMessage   (chat.inbound) a DingTalk payload is no message imgbot can answer
    ├── QuoteTooLarge      (chat.quoted) a richText list longer than any person's message
    ├── QuoteTooDeep       (chat.quoted) a quoted content nested deeper than any message
    ├── TooDeep            (chat.bounded_json) JSON nested too deep; a ValueError too
    ├── UnreadableList     (chat.blocked_words) BLOCKED_WORDS_FILE unusable; a ValueError too
    └── PortInUse          (service.status_server) the status port cannot be bound; an OSError too

The classes marked with a module are defined there, beside the code that raises them.
Messages never carry secrets or whole signed URLs.
"""

from __future__ import annotations


class ImgbotError(Exception):
    """Base of every error imgbot raises on purpose.

    ``retryable`` is True when another attempt may succeed (a network error, HTTP 429 or 5xx);
    ``retry_after`` is the wait in seconds the other side asked for (HTTP ``Retry-After``).
    ``imgbot.net.retry`` reads both, for every caller.
    """

    retryable: bool = False
    retry_after: float | None = None


class ConfigError(ImgbotError):
    """A configuration value is missing or invalid."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class UsageError(ConfigError):
    """A command-line argument is invalid."""


class ImageError(ImgbotError):
    """The bytes given are not an image imgbot accepts.

    ``kind`` says why, for a user's picture to be answered precisely: ``empty``, ``too_large``
    (bytes), ``too_many_pixels`` (a decompression bomb or simply too big) or ``invalid``.
    """

    def __init__(self, message: str, *, kind: str = "invalid") -> None:
        self.kind = kind
        super().__init__(message)


class UserPictureError(ImageError):
    """The picture a user gave to edit is not one imgbot accepts (as opposed to a generator's
    result that is not: that is a plain ``ImageError``)."""


class GeneratorError(ImgbotError):
    """Image generation failed.

    ``reason`` is the provider's message (safe to show); ``moderated`` is True when the provider
    refused the prompt's content, so the bot can ask for another description.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        moderated: bool = False,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.moderated = moderated
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class GeneratorTimeout(GeneratorError):
    """Generation took longer than GENERATOR_TIMEOUT_SECONDS."""


class EditUnavailable(GeneratorError):
    """The configured generator (or its model) cannot edit a picture."""


class StorageError(ImgbotError):
    """Object storage failed; ``code`` is the S3 error code or a network error name."""

    def __init__(self, message: str, *, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class ReplyError(ImgbotError):
    """A reply could not be delivered to DingTalk."""

    def __init__(
        self,
        message: str,
        *,
        errcode: int | None = None,
        retryable: bool = False,
        maybe_delivered: bool = False,
    ) -> None:
        self.errcode = errcode
        self.retryable = retryable
        self.maybe_delivered = maybe_delivered
        """True when the request was sent but no answer came (a timeout): it may have arrived."""
        super().__init__(message)


class PictureError(ImgbotError):
    """A user's picture could not be fetched from DingTalk.

    ``reason`` is one of ``expired`` (the download code is unknown or no longer valid),
    ``too_large`` (over MAX_IMAGE_BYTES), ``empty`` (0 bytes), ``missing`` (the message named no
    picture we can fetch), ``unavailable`` (DingTalk did not answer, or answered with an error),
    or, once fetched, ``too_many_pixels`` / ``invalid`` (not a picture imgbot accepts) /
    ``too_slow`` (its decoding passed PICTURE_CPU_SECONDS).
    """

    REASONS = frozenset(
        {
            "expired",
            "too_large",
            "empty",
            "missing",
            "unavailable",
            "too_many_pixels",
            "invalid",
            "too_slow",
        }
    )

    def __init__(self, message: str, *, reason: str, retryable: bool = False) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown PictureError reason {reason!r}")
        self.reason = reason
        self.retryable = retryable
        super().__init__(message)
