"""One aiohttp session per client, made on first use and closed once."""

from __future__ import annotations

from typing import Any

import aiohttp


class LazySession:
    """An aiohttp session made when first used, so it belongs to the event loop that uses it.

    ``options`` are ``aiohttp.ClientSession``'s keyword arguments (timeout, …); ``cookies=False``
    keeps no cookies between calls (the jar, like the session, needs the running loop).
    """

    def __init__(self, *, cookies: bool = True, **options: Any) -> None:
        self._cookies = cookies
        self._options = options
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        """The session, made now if this is the first call (or the first after ``aclose``)."""
        if self._session is None:
            options = dict(self._options)
            if not self._cookies:
                options["cookie_jar"] = aiohttp.DummyCookieJar()
            self._session = aiohttp.ClientSession(**options)
        return self._session

    async def aclose(self) -> None:
        """Close the session if one was made."""
        if self._session is not None:
            await self._session.close()
            self._session = None
