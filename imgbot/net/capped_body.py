"""Reading an HTTP body with a hard byte cap: a provider's picture or a user's download alike."""

from __future__ import annotations

import aiohttp

CHUNK = 64 * 1024


async def read_upto(answer: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes; the flag is False when the body was longer (reading stops)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in answer.content.iter_chunked(CHUNK):
        total += len(chunk)
        if total > limit:
            chunks.append(chunk[: limit - (total - len(chunk))])
            return b"".join(chunks), False
        chunks.append(chunk)
    return b"".join(chunks), True
