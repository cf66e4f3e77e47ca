"""The simulator's request guard: only its own Host and origin, and JSON for the chat page's posts.

The simulator listens on 127.0.0.1, which any web page the user visits can address. Checking
`Host` defeats DNS rebinding (a page whose own name resolves to 127.0.0.1); checking `Origin` and
requiring `application/json` on the chat page's POSTs defeats cross-site requests (a form or a
`text/plain` fetch needs no CORS preflight, an `application/json` one does and gets none).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from imgbot.simulator.models import error_body

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names of a bind address, not a bind


def allowed_hosts(bound_host: str, port: int) -> frozenset[str]:
    """The `Host` values that name this simulator: loopback names or its bind address, its port."""
    names = set(_LOOPBACK_NAMES)
    if bound_host not in _WILDCARDS:
        names.add(f"[{bound_host}]" if ":" in bound_host else bound_host.lower())
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:  # clients leave the default port out of Host
        hosts |= names
    return frozenset(hosts)


def site_guard(bound_host: str, port: Callable[[], int]) -> Middleware:
    """A middleware refusing foreign `Host`s and `Origin`s (403) and non-JSON chat posts (415).

    ``port`` gives the listening port, known only once the server has started.
    """

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "").lower()
        if host not in allowed_hosts(bound_host, port()):
            return _refuse(403, "forbidden", "Host is not this simulator")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return _refuse(403, "forbidden", "cross-origin requests are refused")
        if (
            request.method == "POST"
            and request.path.startswith("/chat/")
            and request.content_type != "application/json"
        ):
            return _refuse(415, "unsupportedMediaType", "Content-Type must be application/json")
        return await handler(request)

    return guard


def _refuse(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)
