"""Prometheus metrics and the ``/metrics`` + ``/healthz`` endpoints served while the bot runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from imgbot.errors import ConfigError

log = logging.getLogger(__name__)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """An ``Observer`` that records into its own Prometheus registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            "imgbot_messages", "Messages handled, by outcome.", ["outcome"], registry=self.registry
        )
        self.seconds = Histogram(
            "imgbot_stage_seconds",
            "Duration of generate, prepare, upload and reply, in seconds.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stored_bytes = Counter(
            "imgbot_stored_bytes", "Bytes written to object storage.", registry=self.registry
        )
        self.retries = Counter(
            "imgbot_retries",
            "Retried calls, by what was retried.",
            ["what"],
            registry=self.registry,
        )
        self.requests_in_flight = Gauge(
            "imgbot_in_flight_requests",
            "Requests being generated and published now.",
            registry=self.registry,
        )
        self.peak_in_flight = Gauge(
            "imgbot_in_flight_requests_peak",
            "Most requests in flight at once since start.",
            registry=self.registry,
        )
        self._in_flight = 0
        self._peak = 0
        self.last_storage_ok = 0.0

    def stage(self, name: str, seconds: float) -> None:
        """Record a stage duration."""
        self.seconds.labels(name).observe(seconds)

    def stored(self, nbytes: int) -> None:
        """Record stored bytes; storage answered."""
        self.stored_bytes.inc(nbytes)
        self.storage_ok()

    def storage_ok(self) -> None:
        """Storage answered just now."""
        self.last_storage_ok = time.monotonic()

    def outcome(self, name: str) -> None:
        """Count a handled message."""
        self.messages.labels(name).inc()

    def in_flight(self, delta: int) -> None:
        """Move the in-flight gauge and its high-water mark."""
        self.requests_in_flight.inc(delta)
        self._in_flight += delta
        if self._in_flight > self._peak:
            self._peak = self._in_flight
            self.peak_in_flight.set(self._peak)

    def retry(self, what: str) -> None:
        """Count a retry."""
        self.retries.labels(what).inc()


HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class StatusServer:
    """Serves ``/metrics`` and ``/healthz`` on the configured host and port."""

    def __init__(self, metrics: Metrics, health: HealthCheck, host: str, port: int) -> None:
        self._metrics = metrics
        self._health = health
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve."""
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
            raise ConfigError(
                "METRICS_PORT", f"cannot listen on {self._host}:{self._port} ({exc.strerror})"
            ) from None
        log.info("metrics on http://%s:%d/metrics, health on /healthz", self._host, self._port)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        del request
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        del request
        healthy, detail = self._health()
        return web.json_response({"healthy": healthy, **detail}, status=200 if healthy else 503)
