"""The running bot: its parts built from settings, served until a signal stops it.

``build_bot`` wires each part with what it needs (pipeline, reply sender, metrics, the stream
connection, how to open the state store); ``Bot`` runs them together: it opens the state store
(prefix ``imgbot:<client id>:``, shared by every replica of one AppKey), then the connection, the
job worker, periodic storage and store probes, the status endpoints, and the tracked requests it
drains on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from imgbot.bot import DingTalkStream
from imgbot.chat.conversation import ChatRules, Responder
from imgbot.chat.dedup import Deduplicator
from imgbot.config.settings import Settings
from imgbot.dingtalk.pictures import PictureDownloader
from imgbot.dingtalk.sender import ReplySender
from imgbot.errors import ConfigError, StorageError
from imgbot.generators import Generator, build_generator
from imgbot.jobs.task_tracker import TaskTracker
from imgbot.jobs.worker import JobRules, Worker
from imgbot.models import ImageRequest
from imgbot.service.health import health_report
from imgbot.service.metrics import Metrics
from imgbot.service.status_server import PortInUse, StatusServer
from imgbot.state import StateStore, StoreUnavailable, key_prefix, open_store
from imgbot.storage_s3 import S3Storage
from imgbot.studio.maker import Studio
from imgbot.studio.pipeline import Pipeline

log = logging.getLogger(__name__)
STORAGE_PROBE_SECONDS = 30.0
STORE_PROBE_SECONDS = 5.0
"""The state store is probed this often: /healthz follows an outage and its end within seconds."""
StoreOpener = Callable[[], StateStore]


class Bot:
    """The bot process: one stream connection, the requests it accepted, probe and status."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        client_secret: str,
        openapi_endpoint: str,
        pipeline: Pipeline,
        storage: S3Storage,
        sender: ReplySender,
        rules: ChatRules,
        open_state: StoreOpener,
        metrics: Metrics,
        studio: Studio,
        downloader: PictureDownloader,
    ) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._storage = storage
        self._sender = sender
        self._rules = rules
        self._open_state = open_state
        self._store: StateStore | None = None
        self._responder: Responder | None = None
        self._studio = studio
        self._downloader = downloader
        self.metrics = metrics
        self._tasks = TaskTracker()
        self._dedup = Deduplicator()
        self._stream = DingTalkStream(
            client_id=client_id,
            client_secret=client_secret,
            openapi_endpoint=openapi_endpoint,
            on_request=self.accept,
            tracker=self._tasks,
            observer=metrics,
        )
        self._running: asyncio.Task[None] | None = None
        self._stop_requested = False

    @property
    def connected(self) -> bool:
        """True while the stream connection is open."""
        return self._stream.connected

    @property
    def sessions(self) -> int:
        """Stream connections opened so far."""
        return self._stream.sessions

    def accept(self, request: ImageRequest) -> None:
        """Start answering ``request`` unless it is a repeat (DingTalk redelivers).

        The local filter catches repeats to this process cheaply; the store's message claim then
        decides across replicas.
        """
        if not self._dedup.first_time(request.msg_id):
            self.metrics.frame("duplicate")
            log.info("msg %s: duplicate delivery ignored", request.msg_id)
            return
        self.metrics.frame("message")
        assert self._responder is not None  # noqa: S101 (the stream starts after the responder)
        self._tasks.track(self._responder.respond(request))

    async def _start_jobs(self) -> Worker:
        """Open the state store and build the responder and the job worker on it."""
        # SQLite opens (and locks) its file here, in a thread: it may wait for the lock.
        self._store = store = await asyncio.to_thread(self._open_state)
        responder = Responder(
            self._pipeline, self._sender, self._rules, self.metrics, store, studio=self._studio
        )
        rules = JobRules(
            slots=self._rules.max_concurrent,
            lease_seconds=self._settings.request_reclaim_seconds,
            max_attempts=self._settings.request_max_attempts,
        )
        worker = Worker(
            store,
            rules,
            work=responder.work,
            give_up=responder.give_up,
            tracker=self._tasks,
            observer=self.metrics,
        )
        responder.attach(worker)
        self._responder = responder
        log.info(
            "job worker %s: %d slot(s), lease %.0f s", worker.name, rules.slots, rules.lease_seconds
        )
        return worker

    def health(self) -> tuple[bool, dict[str, object]]:
        """What /healthz answers."""
        return health_report(self.metrics, self.connected)

    async def run(self) -> None:
        """Serve until ``stop()``, then let in-flight requests finish within the grace period."""
        status = None
        if self._settings.metrics_port:
            status = StatusServer(
                self.metrics.registry,
                self.health,
                self._settings.metrics_host,
                self._settings.metrics_port,
            )
            try:
                await status.start()
            except PortInUse as exc:
                raise ConfigError("METRICS_PORT", str(exc.strerror)) from None
        try:
            worker = await self._start_jobs()
        except BaseException:
            if status is not None:
                await status.stop()
            raise
        background = [
            asyncio.create_task(self._probe_storage()),
            asyncio.create_task(self._probe_store()),
            asyncio.create_task(worker.run()),
        ]
        self._running = asyncio.create_task(self._stream.run())
        if self._stop_requested:
            self._running.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
            if not self._stop_requested:
                raise asyncio.CancelledError  # cancelled from outside, not by stop()
        finally:
            # No new claims from here; jobs already running get the grace period.
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                await self._tasks.drain(self._settings.shutdown_grace_seconds)
            finally:
                if status is not None:
                    await status.stop()

    def stop(self) -> None:
        """Ask the bot to stop: no new connection, in-flight work gets the grace period."""
        self._stop_requested = True
        if self._running is not None:
            self._running.cancel()  # also while the connection is still being opened

    async def aclose(self) -> None:
        """Release the reply sender's, the generator's and the state store's connections."""
        await self._sender.aclose()
        await self._downloader.aclose()
        await self._pipeline.aclose()
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    async def _probe_store(self) -> None:
        assert self._store is not None  # noqa: S101 (started after the store is open)
        while True:
            try:
                waiting = await self._store.waiting()
            except StoreUnavailable as exc:
                self.metrics.store_failed()
                log.warning("state store probe failed: %s", exc)
            except Exception:  # a bug in the probe must not leave /healthz stale and silent
                self.metrics.store_failed()
                log.exception("state store probe failed unexpectedly")
            else:
                self.metrics.store_answered()
                self.metrics.jobs_waiting(waiting)
            await asyncio.sleep(STORE_PROBE_SECONDS)

    async def _probe_storage(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._storage.probe)
                self.metrics.storage_answered()
            except StorageError as exc:
                self.metrics.storage_failed()
                log.warning("storage probe failed: %s", exc)
            except Exception:  # a bug in the probe must not leave /healthz stale and silent
                self.metrics.storage_failed()
                log.exception("storage probe failed unexpectedly")
            await asyncio.sleep(STORAGE_PROBE_SECONDS)


def build_bot(
    settings: Settings,
    *,
    client_id: str,
    client_secret: str,
    openapi_endpoint: str | None = None,
    generator: Generator | None = None,
) -> Bot:
    """Wire a bot from settings; ``generator`` replaces the one IMAGE_GENERATOR names.

    The state store is opened when the bot runs, named by STATE_URL, under ``imgbot:<client id>:``.
    """
    metrics = Metrics()
    pipeline = Pipeline.from_settings(
        settings, generator or build_generator(settings, metrics), observer=metrics
    )
    endpoint = openapi_endpoint or settings.dingtalk_openapi_endpoint
    sender = ReplySender(
        client_id=client_id,
        client_secret=client_secret,
        openapi_endpoint=endpoint,
        timeout=settings.reply_timeout_seconds,
        attempts=settings.reply_attempts,
        observer=metrics,
    )
    downloader = PictureDownloader(
        openapi_endpoint=endpoint,
        robot_code=client_id,  # an app robot's robotCode is its AppKey
        tokens=sender,
        max_bytes=settings.max_image_bytes,
        timeout=settings.picture_download_timeout_seconds,
        attempts=settings.picture_download_attempts,
        observer=metrics,
    )
    studio = Studio(pipeline, downloader)
    return Bot(
        settings,
        client_id=client_id,
        client_secret=client_secret,
        openapi_endpoint=endpoint,
        pipeline=pipeline,
        storage=pipeline.storage,
        sender=sender,
        rules=ChatRules.from_settings(settings),
        open_state=lambda: open_store(settings, prefix=key_prefix(client_id)),
        metrics=metrics,
        studio=studio,
        downloader=downloader,
    )


async def serve(bot: Bot) -> None:
    """Run ``bot`` until SIGTERM or SIGINT, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bot.stop)
    try:
        await bot.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await bot.aclose()


def run_bot(settings: Settings) -> int:
    """``imgbot run``: the bot against DingTalk."""
    if not settings.dingtalk_client_id or settings.dingtalk_client_secret is None:
        raise ConfigError(
            "DINGTALK_CLIENT_ID",
            "missing; set it and DINGTALK_CLIENT_SECRET (or use `imgbot simulate`)",
        )
    bot = build_bot(
        settings,
        client_id=settings.dingtalk_client_id,
        client_secret=settings.dingtalk_client_secret.get_secret_value(),
    )
    asyncio.run(serve(bot))
    return 0
