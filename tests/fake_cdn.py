"""A local stand-in for a Tencent CDN edge with URL authentication in front of a private bucket.

It checks each request's signature by the documented formulas (types A and D), refuses it when
missing, wrong, or older than the validity the "console" sets, and fetches the object from the
real, private MinIO with its own credentials, as back-to-origin authentication does.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class FakeCdnEdge:
    """The edge: ``kind`` is tencent-a or tencent-d; ``valid_seconds`` the console's setting."""

    def __init__(
        self, origin: Any, bucket: str, *, kind: str, key: str, valid_seconds: int
    ) -> None:
        self._origin = origin
        self._bucket = bucket
        self.kind = kind
        self._key = key
        self.valid_seconds = valid_seconds
        self.origin_fetches = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def signed_at(self, path: str, query: Any) -> int | None:
        """The signing time if the signature is right for ``path``, else None."""
        sign = query.get("sign", "")
        if self.kind == "tencent-a":
            parts = sign.split("-")
            if len(parts) != 4 or not parts[0].isdigit():
                return None
            timestamp, rand, uid, digest = parts
            good = _md5(f"{path}-{timestamp}-{rand}-{uid}-{self._key}")
            return int(timestamp) if digest == good and uid == "0" else None
        timestamp = query.get("t", "")
        if not timestamp.isdigit():
            return None
        return int(timestamp) if sign == _md5(f"{self._key}{path}{timestamp}") else None

    async def _serve(self, request: web.Request) -> web.Response:
        path = request.raw_path.split("?", 1)[0]
        signed_at = self.signed_at(path, request.query)
        if signed_at is None:
            return web.Response(status=403, text="signature invalid")
        if time.time() > signed_at + self.valid_seconds:
            return web.Response(status=403, text="signature expired")
        key = unquote(path.lstrip("/"))
        self.origin_fetches += 1
        try:
            answer = await asyncio.to_thread(self._origin.get_object, Bucket=self._bucket, Key=key)
        except self._origin.exceptions.NoSuchKey:
            return web.Response(status=404, text="not found")
        body = await asyncio.to_thread(answer["Body"].read)
        return web.Response(body=body, content_type=answer["ContentType"])
