"""The child process's side of ``imgbot.images.workers``: one picture in, one answer out.

Run as ``python -I -S -c "...serve()" <cpu seconds> <folders>``; it imports only what validating a
picture needs, so that it starts quickly. Both sides send a message as a 4-byte length, a JSON
header and raw bytes, and read exactly the lengths given: no copy of a whole message is made.
"""

from __future__ import annotations

import json
import resource
import sys

from imgbot.errors import ImageError
from imgbot.images.renditions import ImageLimits, prepare_edit
from imgbot.models import EditSpec

HEADER_BYTES = 4
"""A message is a JSON header after its length (this many bytes, big-endian), then raw bytes
whose lengths the header gives."""
MAX_HEADER = 64 * 1024
"""The longest JSON header either side accepts."""


def header_frame(header: dict[str, object]) -> bytes:
    """``header`` as JSON after its length."""
    body = json.dumps(header).encode()
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def header_length(raw: bytes) -> int:
    """The length of the JSON header that follows; ``ValueError`` above MAX_HEADER."""
    length = int.from_bytes(raw, "big")
    if len(raw) != HEADER_BYTES or length > MAX_HEADER:
        raise ValueError("no header")
    return length


def parse_header(raw: bytes) -> dict[str, object]:
    """The JSON object of a header; ``ValueError`` if it is not one (nested past Python's
    recursion limit included)."""
    try:
        header = json.loads(raw)
    except RecursionError:
        raise ValueError("the header nests too deep") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    return header


def serve() -> None:
    """The child's side: limit CPU time, read one request from stdin, answer on stdout."""
    seconds = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    header = parse_header(stdin.read(header_length(stdin.read(HEADER_BYTES))))
    data = stdin.read(int(header["bytes"]))  # type: ignore[call-overload]
    limits = ImageLimits(**header["limits"])  # type: ignore[arg-type]
    spec = EditSpec(**header["spec"])  # type: ignore[arg-type]
    try:
        made = prepare_edit(data, limits, spec)
    except ImageError as exc:
        stdout.write(header_frame({"error": str(exc), "kind": exc.kind}))
    else:
        fields: dict[str, object] = {
            "ext": made.original.ext,
            "content_type": made.original.content_type,
            "original": len(made.original.data),
            "fitted": len(made.fitted),
            "width": made.size.width,
            "height": made.size.height,
        }
        stdout.write(header_frame(fields))
        stdout.write(made.original.data)
        stdout.write(made.fitted)
    stdout.flush()
