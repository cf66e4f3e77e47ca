"""Which requests are answered with a sentence instead of a picture, decided before any work."""

from __future__ import annotations

from dataclasses import dataclass

from imgbot.chat.inbound import UNREADABLE
from imgbot.delivery import texts
from imgbot.models import ImageRequest, Outcome


@dataclass(frozen=True, slots=True)
class Refusal:
    """The outcome name a refused request is counted under, and what the user is told."""

    outcome: Outcome
    text: str


def refusal(
    request: ImageRequest, *, can_edit: bool, max_prompt_chars: int, retention_days: int
) -> Refusal | None:
    """Why ``request`` gets a sentence instead of a picture; None when it can be made."""
    return _picture_refusal(request, can_edit) or _text_refusal(
        request, max_prompt_chars, retention_days
    )


def _picture_refusal(request: ImageRequest, can_edit: bool) -> Refusal | None:
    """Pictures alone, quotes that cannot be read, edits without instruction or editor."""
    ref = request.picture
    if request.message_type == "picture" or (
        request.message_type == "richText" and not request.prompt and ref is not None
    ):
        # No pending picture is kept for a later instruction: replicas share no memory, and a
        # quote says unambiguously which picture is meant.
        return Refusal(Outcome.PICTURE_ALONE, texts.PICTURE_ALONE)
    if ref is None:
        return (
            Refusal(Outcome.QUOTE_UNREADABLE, texts.QUOTE_UNREADABLE)
            if request.quote_unreadable
            else None
        )
    if not request.prompt:
        return Refusal(Outcome.EMPTY, texts.EDIT_NEEDS_INSTRUCTION)
    if not (ref.download_code or ref.stored):
        return Refusal(Outcome.PICTURE_MISSING, texts.PICTURE_MISSING)
    if not can_edit:
        return Refusal(Outcome.EDIT_UNAVAILABLE, texts.EDIT_UNAVAILABLE)
    return None


def _text_refusal(
    request: ImageRequest, max_prompt_chars: int, retention_days: int
) -> Refusal | None:
    """Messages that are not text, empty prompts, help words and prompts over the limit."""
    if request.message_type == UNREADABLE:
        return Refusal(Outcome.FAILED, texts.UNREADABLE)
    if request.message_type not in ("text", "richText"):
        return Refusal(Outcome.NOT_TEXT, texts.NOT_TEXT)
    prompt = request.prompt
    if not prompt:
        return Refusal(Outcome.EMPTY, texts.EMPTY)
    if prompt.lower() in texts.HELP_WORDS:
        return Refusal(Outcome.HELP, texts.HELP.format(days=retention_days))
    if len(prompt) > max_prompt_chars:
        text = texts.TOO_LONG.format(length=len(prompt), limit=max_prompt_chars)
        return Refusal(Outcome.TOO_LONG, text)
    return None
