"""The ``/metrics`` and ``/healthz`` HTTP endpoints served while the bot runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from imgbot.errors import ImgbotError

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class PortInUse(ImgbotError, OSError):
    """The status port could not be bound; ``strerror`` says why (an ``OSError`` too)."""


class StatusServer:
    """Serves ``/metrics`` (Prometheus text) and ``/healthz`` (JSON, 200 or 503)."""

    def __init__(
        self, registry: CollectorRegistry, health: HealthCheck, host: str, port: int
    ) -> None:
        self._registry = registry
        self._health = health
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raise ``PortInUse`` when the address cannot be bound."""
        app = web.Application()
        app.add_routes(
            [web.get("/metrics", self._serve_metrics), web.get("/healthz", self._serve_health)]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self.stop()
            raise PortInUse(
                exc.errno, f"cannot listen on {self._host}:{self._port} ({exc.strerror})"
            ) from None
        log.info("metrics on http://%s:%d/metrics, health on /healthz", self._host, self._port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        del request
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        del request
        healthy, detail = self._health()
        return web.json_response({"healthy": healthy, **detail}, status=200 if healthy else 503)
