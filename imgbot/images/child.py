"""The child process's side of ``imgbot.images.workers``: one picture in, one answer out.

Run as ``python -I -S -c "...serve()" <cpu seconds> <folders>``; it imports only what validating a
picture needs, so that it starts quickly. Both sides frame a message as a 4-byte length, a JSON
header and raw bytes.
"""

from __future__ import annotations

import json
import resource
import sys

from imgbot.errors import ImageError
from imgbot.images.renditions import ImageLimits, prepare_edit
from imgbot.models import EditSpec

_HEADER_BYTES = 4
MAX_HEADER = 64 * 1024
"""The longest JSON header either side accepts."""


def frame(header: bytes, body: bytes) -> bytes:
    """``header`` (JSON) and ``body`` as one message."""
    return len(header).to_bytes(_HEADER_BYTES, "big") + header + body


def unframe(raw: bytes) -> tuple[dict[str, object], bytes]:
    """The JSON object and the bytes of one message; ``ValueError`` if it is malformed."""
    length = int.from_bytes(raw[:_HEADER_BYTES], "big")
    if len(raw) < _HEADER_BYTES or length > min(MAX_HEADER, len(raw) - _HEADER_BYTES):
        raise ValueError("no header")
    header = json.loads(raw[_HEADER_BYTES : _HEADER_BYTES + length])
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    return header, raw[_HEADER_BYTES + length :]


def serve() -> None:
    """The child's side: limit CPU time, read one request from stdin, answer on stdout."""
    seconds = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    header, data = unframe(sys.stdin.buffer.read())
    limits = ImageLimits(**header["limits"])  # type: ignore[arg-type]
    spec = EditSpec(**header["spec"])  # type: ignore[arg-type]
    try:
        made = prepare_edit(data, limits, spec)
    except ImageError as exc:
        answer = frame(json.dumps({"error": str(exc), "kind": exc.kind}).encode(), b"")
    else:
        fields = {
            "ext": made.original.ext,
            "content_type": made.original.content_type,
            "original": len(made.original.data),
            "fitted": len(made.fitted),
            "width": made.size.width,
            "height": made.size.height,
        }
        answer = frame(json.dumps(fields).encode(), made.original.data)
        sys.stdout.buffer.write(answer)
        answer = made.fitted
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
