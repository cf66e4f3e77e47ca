"""Each way a user's picture can be unusable is answered with a sentence of its own."""

from __future__ import annotations

import pytest

from imgbot.delivery import texts
from imgbot.errors import PictureError, UserPictureError
from imgbot.studio.maker import picture_error

KINDS = ["empty", "too_large", "too_many_pixels", "invalid", "too_slow"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_unusable_picture_is_told_why(kind: str) -> None:
    """The studio's PictureError for a picture refused as ``kind`` reads as that, never as
    DingTalk being unavailable."""
    error = picture_error(UserPictureError("refused", kind=kind))
    assert isinstance(error, PictureError)
    assert texts.for_error(error) not in (texts.PICTURE_UNAVAILABLE, texts.FAILED)


def test_the_sentences_differ() -> None:
    """No two kinds of unusable picture share a sentence."""
    sentences = [texts.for_error(picture_error(UserPictureError("x", kind=k))) for k in KINDS]
    assert len(set(sentences)) == len(KINDS)
