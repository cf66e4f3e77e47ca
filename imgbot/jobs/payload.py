"""A job's payload: the ``ImageRequest`` it answers, as JSON of every field (new fields need no
code here)."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from imgbot.models import ImageRequest

_REQUEST = TypeAdapter(ImageRequest)


def encode_request(request: ImageRequest) -> str:
    """The job payload of ``request``."""
    return _REQUEST.dump_json(request).decode()


def decode_request(payload: str) -> ImageRequest:
    """The request a job payload holds; ``ValueError`` when it is not one."""
    try:
        return _REQUEST.validate_json(payload)
    except ValidationError as exc:
        raise ValueError(f"not an image request ({exc.error_count()} errors)") from None
