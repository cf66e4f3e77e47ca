"""User metadata stored on each object: where a picture came from, for people inspecting the bucket
and for the bot, which edits a stored picture only for the conversation recorded on it.

S3 user metadata travels as ``x-amz-meta-*`` headers: values must be ASCII, so every value is
percent-encoded UTF-8, and the whole set (keys and values) must fit S3's 2 KB budget, so the prompt
is cut to what is left after the other fields. Nothing but these fields is stored: no secrets,
nothing else from the request.
"""

from __future__ import annotations

from urllib.parse import quote

from imgbot.models import Origin

METADATA_BUDGET = 2048
"""S3's limit on user metadata: the UTF-8 bytes of every key and value together. MinIO counts
each key with its ``x-amz-meta-`` header prefix, so that prefix is counted here too."""
_HEADER_PREFIX = len("x-amz-meta-")
USER = "user"
"""The ``generator`` recorded on a picture a user sent (stored to be edited)."""
CONVERSATION = "dingtalk-conversation-id"
"""The conversation a picture belongs to: the only one from which quoting it edits it."""


def object_metadata(
    origin: Origin, generator: str, model: str, *, edit_of: str = ""
) -> dict[str, str]:
    """The user metadata for one stored picture, percent-encoded and within the budget.

    ``edit_of`` names the stored key of the user's picture an edit changed (``operation`` edit);
    a user's own picture has ``generator`` "user" (``operation`` upload); a drawn one has none.
    """
    fields = {
        CONVERSATION: origin.conversation_id,  # first: kept whenever it fits the budget at all
        "operation": "edit" if edit_of else ("upload" if generator == USER else ""),
        "edit-of": edit_of,
        "generator": generator,
        "model": model,
        "dingtalk-msg-id": origin.msg_id,
        "dingtalk-sender-staff-id": origin.sender_staff_id,
    }
    metadata: dict[str, str] = {}
    used = 0
    for key, value in fields.items():
        encoded = _encode(value)
        size = _HEADER_PREFIX + len(key) + len(encoded)
        if value and used + size <= METADATA_BUDGET // 2:  # half the budget is the prompt's
            metadata[key] = encoded
            used += size
    prompt = _encode_within(origin.prompt, METADATA_BUDGET - used - _HEADER_PREFIX - len("prompt"))
    if prompt:
        metadata["prompt"] = prompt
    return metadata


def owner_metadata(conversation_id: str) -> dict[str, str]:
    """The metadata a picture of ``conversation_id`` carries, as stored (for comparing)."""
    return {CONVERSATION: _encode(conversation_id)}


def _encode(text: str) -> str:
    return quote(text, safe="")


def _encode_within(text: str, budget: int) -> str:
    """Percent-encode the longest prefix of ``text`` whose encoding fits ``budget`` bytes."""
    encoded: list[str] = []
    size = 0
    for char in text:
        piece = _encode(char)
        if size + len(piece) > budget:
            break
        encoded.append(piece)
        size += len(piece)
    return "".join(encoded)
