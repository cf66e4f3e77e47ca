"""The running bot process: its parts built from settings, served until a signal stops it.

``build_bot`` builds each part once with what it needs, from the edges inward: the blocked words
(a file that cannot be read stops the start), storage, the picture studio, DingTalk's token
cache, reply sender and picture downloader, and the replies in the configured style.
``BotProcess.run`` opens the state store (shared by every replica of one AppKey under
``imgbot:<client id>:``) and builds on it, in the order a message flows back from them: the
index of recent pictures, the job's work and the job worker, admission, then the stream
connection that feeds admission. It runs them with the storage and store probes and the status
endpoints, and drains the tracked requests on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imgbot.bot import DingTalkStream
from imgbot.chat.admission import Admission, AdmissionRules
from imgbot.chat.blocked_words import BlockedWords
from imgbot.chat.dedup import Deduplicator
from imgbot.config.settings import Settings
from imgbot.delivery.card_replies import CardReplies
from imgbot.delivery.replies import Replies
from imgbot.dingtalk.cards import CardClient
from imgbot.dingtalk.media import MediaUploader
from imgbot.dingtalk.pictures import PictureDownloader
from imgbot.dingtalk.sender import ReplySender
from imgbot.dingtalk.tokens import AccessTokens
from imgbot.errors import ConfigError, StorageError
from imgbot.generators import Generator, build_generator
from imgbot.jobs.image_job import ImageJob
from imgbot.jobs.task_tracker import TaskTracker
from imgbot.jobs.worker import JobRules, Worker
from imgbot.models import ImageRequest
from imgbot.observe import Observer, Observers
from imgbot.presign import Presigner
from imgbot.service.health import Health
from imgbot.service.metrics import Metrics
from imgbot.service.status_server import PortInUse, StatusServer
from imgbot.service.usage import UsageRefresh
from imgbot.state import StateStore, StoreUnavailable, key_prefix, open_store
from imgbot.storage_s3 import S3Storage
from imgbot.studio.gallery import Gallery, GalleryRules
from imgbot.studio.maker import Studio
from imgbot.studio.pipeline import Pipeline

log = logging.getLogger(__name__)
STORAGE_PROBE_SECONDS = 30.0
STORE_PROBE_SECONDS = 5.0
"""The state store is probed this often: /healthz follows an outage and its end within seconds."""
StoreOpener = Callable[[], StateStore]


@dataclass(frozen=True, slots=True)
class Credentials:
    """The DingTalk app the process answers for, and where DingTalk's OpenAPI is."""

    client_id: str
    client_secret: str
    openapi_endpoint: str


@dataclass(frozen=True, slots=True)
class ProcessRules:
    """How the process runs around its requests."""

    metrics_host: str
    metrics_port: int
    shutdown_grace_seconds: float
    request_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessRules:
        """The rules named in settings."""
        return cls(
            metrics_host=settings.metrics_host,
            metrics_port=settings.metrics_port,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            request_timeout_seconds=settings.request_timeout_seconds,
        )


class BotProcess:
    """One bot process: the stream connection, the requests it accepted, probes and status."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        rules: ProcessRules,
        job_rules: JobRules,
        admission_rules: AdmissionRules,
        gallery_rules: GalleryRules,
        open_state: StoreOpener,
        storage: S3Storage,
        studio: Studio,
        presigner: Presigner,
        blocked_words: BlockedWords | None,
        replies: Replies,
        metrics: Metrics,
        health: Health,
        observer: Observer,
        closers: list[Callable[[], Awaitable[None]]],
        usage: UsageRefresh | None = None,
    ) -> None:
        self._credentials = credentials
        self._rules = rules
        self._job_rules = job_rules
        self._admission_rules = admission_rules
        self._gallery_rules = gallery_rules
        self._open_state = open_state
        self._storage = storage
        self._studio = studio
        self._presigner = presigner
        self._blocked_words = blocked_words
        self._replies = replies
        self.metrics = metrics
        self._health = health
        self._observer = observer
        """Where every part reports: the metrics and the health, through one fan-out."""
        self._closers = closers
        self._usage = usage
        self._tasks = TaskTracker()
        self._running: asyncio.Task[None] | None = None
        self._stop_requested = False

    @property
    def connected(self) -> bool:
        """True while the stream connection is open."""
        return self._health.connected

    def health(self) -> tuple[bool, dict[str, object]]:
        """What /healthz answers."""
        return self._health.report()

    async def run(self) -> None:
        """Serve until ``stop()``, then let in-flight requests finish within the grace period."""
        async with contextlib.AsyncExitStack() as stack:
            if self._rules.metrics_port:
                status = StatusServer(
                    self.metrics.registry,
                    self.health,
                    self._rules.metrics_host,
                    self._rules.metrics_port,
                )
                try:
                    await status.start()
                except PortInUse as exc:
                    raise ConfigError("METRICS_PORT", str(exc.strerror)) from None
                stack.push_async_callback(status.stop)
            # SQLite opens (and locks) its file here, in a thread: it may wait for the lock.
            store = await asyncio.to_thread(self._open_state)
            stack.push_async_callback(store.aclose)
            await self._serve(store)

    async def _serve(self, store: StateStore) -> None:
        gallery = Gallery(store, self._presigner, self._gallery_rules)
        image_job = ImageJob(
            self._studio,
            self._replies,
            gallery,
            request_timeout=self._rules.request_timeout_seconds,
            observer=self._observer,
        )
        worker = Worker(
            store,
            self._job_rules,
            work=image_job.work,
            give_up=image_job.give_up,
            tracker=self._tasks,
            observer=self._observer,
        )
        log.info(
            "job worker %s: %d slot(s), lease %.0f s",
            worker.name,
            self._job_rules.slots,
            self._job_rules.lease_seconds,
        )
        admission = Admission(
            store,
            worker,
            self._replies,
            self._admission_rules,
            self._observer,
            gallery=gallery,
            blocked_words=self._blocked_words,
        )
        stream = DingTalkStream(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret,
            openapi_endpoint=self._credentials.openapi_endpoint,
            on_request=_Intake(admission, self._tasks, self._observer).accept,
            tracker=self._tasks,
            observer=self._observer,
        )
        background = [
            asyncio.create_task(self._probe_storage()),
            asyncio.create_task(self._probe_store(store)),
            asyncio.create_task(worker.run()),
        ]
        if self._usage is not None:
            background.append(asyncio.create_task(self._usage.run()))
        self._running = asyncio.create_task(stream.run())
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
            await self._tasks.drain(self._rules.shutdown_grace_seconds)

    def stop(self) -> None:
        """Ask the bot to stop: no new connection, in-flight work gets the grace period."""
        self._stop_requested = True
        if self._running is not None:
            self._running.cancel()  # also while the connection is still being opened

    async def aclose(self) -> None:
        """Release the HTTP sessions and the generator's connections."""
        for close in self._closers:
            await close()

    async def _probe_store(self, store: StateStore) -> None:
        async def once() -> None:
            self.metrics.jobs_waiting(await store.waiting())

        await _probe(
            "state store",
            once,
            expected=(StoreUnavailable,),
            answered=self._observer.store_answered,
            failed=self._observer.store_failed,
            every=STORE_PROBE_SECONDS,
        )

    async def _probe_storage(self) -> None:
        async def once() -> None:
            await asyncio.to_thread(self._storage.probe)

        await _probe(
            "storage",
            once,
            expected=(StorageError,),
            answered=self._observer.storage_answered,
            failed=self._observer.storage_failed,
            every=STORAGE_PROBE_SECONDS,
        )


async def _probe(
    what: str,
    once: Callable[[], Awaitable[None]],
    *,
    expected: tuple[type[Exception], ...],
    answered: Callable[[], None],
    failed: Callable[[], None],
    every: float,
) -> None:
    """Call ``once`` every ``every`` seconds until cancelled, reporting each answer or failure."""
    while True:
        try:
            await once()
        except expected as exc:
            failed()
            log.warning("%s probe failed: %s", what, exc)
        except Exception:  # a bug in the probe must not leave /healthz stale and silent
            failed()
            log.exception("%s probe failed unexpectedly", what)
        else:
            answered()
        await asyncio.sleep(every)


class _Intake:
    """Where the stream hands parsed requests: a cheap local repeat filter, then admission as a
    tracked task (the handler must not block: DingTalk waits for its ACK)."""

    def __init__(self, admission: Admission, tasks: TaskTracker, observer: Observer) -> None:
        self._admission = admission
        self._tasks = tasks
        self._observer = observer
        self._dedup = Deduplicator()

    def accept(self, request: ImageRequest) -> None:
        """Start admitting ``request`` unless this process saw it already (DingTalk redelivers);
        the store's message claim then decides across replicas."""
        if not self._dedup.first_time(request.msg_id):
            self._observer.frame("duplicate")
            log.info("msg %s: duplicate delivery ignored", request.msg_id)
            return
        self._observer.frame("message")
        self._tasks.track(self._admission.admit(request))


def _media_upload_used(settings: Settings) -> bool:
    """DINGTALK_MEDIA_UPLOAD, when it can do anything: with REPLY_STYLE=image and a preview type
    DingTalk's media store takes; otherwise one warning at start names the keys."""
    if not settings.dingtalk_media_upload:
        return False
    if settings.reply_style == "image" and settings.preview_format != "webp":
        return True
    log.warning(
        "DINGTALK_MEDIA_UPLOAD=true does nothing with REPLY_STYLE=%s and PREVIEW_FORMAT=%s "
        "(it needs REPLY_STYLE=image and PREVIEW_FORMAT=jpeg); not uploading",
        settings.reply_style,
        settings.preview_format,
    )
    return False


def build_bot(
    settings: Settings,
    *,
    client_id: str,
    client_secret: str,
    openapi_endpoint: str | None = None,
    oapi_endpoint: str | None = None,
    generator: Generator | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BotProcess:
    """Build a bot process from settings; ``generator`` replaces the one IMAGE_GENERATOR names,
    ``openapi_endpoint`` and ``oapi_endpoint`` DingTalk's (the simulator's); ``clock`` is the card
    client's (its pause after a refusal).

    The state store is opened when the bot runs, named by STATE_URL, under ``imgbot:<client id>:``.
    """
    listed = settings.blocked_words_file
    blocked_words = BlockedWords.load(listed) if listed is not None else None
    metrics, health = Metrics(), Health()
    observer = Observers(metrics, health)
    storage = S3Storage.from_settings(settings)
    generator = generator or build_generator(settings, observer)
    pipeline = Pipeline.from_settings(settings, generator, storage=storage, observer=observer)
    endpoint = openapi_endpoint or settings.dingtalk_openapi_endpoint
    tokens = AccessTokens(
        openapi_endpoint=endpoint,
        client_id=client_id,
        client_secret=client_secret,
        timeout=settings.reply_timeout_seconds,
    )
    sender = ReplySender(
        client_id=client_id,
        openapi_endpoint=endpoint,
        tokens=tokens,
        timeout=settings.reply_timeout_seconds,
        attempts=settings.reply_attempts,
        observer=observer,
    )
    downloader = PictureDownloader(
        openapi_endpoint=endpoint,
        robot_code=client_id,  # an app robot's robotCode is its AppKey
        tokens=tokens,
        max_bytes=settings.max_image_bytes,
        timeout=settings.picture_download_timeout_seconds,
        attempts=settings.picture_download_attempts,
        observer=observer,
    )
    media = (
        MediaUploader(
            oapi_endpoint=oapi_endpoint or settings.dingtalk_oapi_endpoint,
            tokens=tokens,
            timeout=settings.reply_timeout_seconds,
            attempts=settings.reply_attempts,
            observer=observer,
        )
        if _media_upload_used(settings)
        else None
    )
    cards = None
    if settings.reply_style == "card" and settings.card_template_id:
        cards = CardClient(
            client_id=client_id,
            openapi_endpoint=endpoint,
            tokens=tokens,
            template_id=settings.card_template_id,
            timeout=settings.reply_timeout_seconds,
            attempts=settings.reply_attempts,
            cooldown=settings.card_cooldown_seconds,
            min_gap=settings.card_update_gap_seconds,
            observer=observer,
            clock=clock,
        )
    replies = Replies(
        sender,
        settings.reply_style,
        cards=CardReplies(cards) if cards is not None else None,
        media=media,
    )
    return BotProcess(
        credentials=Credentials(client_id, client_secret, endpoint),
        rules=ProcessRules.from_settings(settings),
        job_rules=JobRules.from_settings(settings),
        admission_rules=AdmissionRules.from_settings(settings, can_edit=pipeline.can_edit),
        gallery_rules=GalleryRules.from_settings(settings),
        open_state=lambda: open_store(settings, prefix=key_prefix(client_id)),
        storage=storage,
        studio=Studio(pipeline, downloader),
        presigner=pipeline.presigner,
        blocked_words=blocked_words,
        replies=replies,
        metrics=metrics,
        health=health,
        observer=observer,
        closers=[
            sender.aclose,
            downloader.aclose,
            *([media.aclose] if media else []),
            *([cards.aclose] if cards is not None else []),
            tokens.aclose,
            pipeline.aclose,
        ],
        usage=UsageRefresh.from_settings(settings, metrics.storage_usage),
    )


async def serve(bot: BotProcess) -> None:
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
