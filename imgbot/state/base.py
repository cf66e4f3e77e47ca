"""The state seam: what every replica of one bot shares, in the store STATE_URL names.

Four things live here, each answered atomically by the store so that replicas agree:
- message ids already claimed (DingTalk delivers a push to one connection, and redelivers one
  that is not ACKed in time, perhaps to another replica): the first claim wins, kept ``ttl``;
- per-user rate windows (USER_REQUESTS_PER_MINUTE holds for the whole deployment);
- accepted requests as durable jobs: a job is waiting, then claimed by one worker under a lease
  that the worker renews (heartbeat); a lease not renewed for its length lets another worker (or
  the same bot after a restart) claim the job again; the final reply is fenced by the claim's
  token, so that of a slow first worker and the one that reclaimed its job only one posts it;
- the number of waiting jobs, which MAX_QUEUED_REQUESTS bounds for the whole deployment;
- each sender's recent pictures per conversation (「我的图片」): the bot user cannot list the
  bucket, so this index is what names them; an entry lives no longer than its objects.

Times are the store's own clock (Redis ``TIME``; the SQLite store's ``clock``, the process's
wall clock unless a test gives another), never a replica's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from imgbot.errors import ImgbotError

Verdict = Literal["allow", "tell", "quiet"]
"""A rate decision: within the limit; over it and to be told so (once a window); over it, quiet."""

MESSAGE_CLAIM_SECONDS = 86_400.0
"""How long to keep a claimed msgId (``claim_message``'s ttl): DingTalk redelivers an un-ACKed
push after about 60 s, so a day leaves a wide margin for late redeliveries."""
DONE_KEPT_SECONDS = 86_400.0
"""How long a finished job is kept (so a late duplicate submit still finds it "known")."""


class StoreUnavailable(ImgbotError):
    """The state store did not answer (down, restarting, unreachable, or refused us)."""


class StoreNotReady(StoreUnavailable):
    """Opened without making anything (doctor), the embedded store's file is missing, empty or
    from an older imgbot: the bot would set it up at start."""


class StoreInUse(ImgbotError):
    """The embedded store's file is held by another bot process (one process per file).

    ``pid`` is the holder's process id when it could be read (doctor reports it).
    """

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        self.pid = pid
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Job:
    """One claim on an accepted request.

    ``token`` identifies this claim: a reclaim makes a new one, and the store accepts heartbeats
    and the final-reply fence only from the current token. ``attempt`` is 1 for the first claim,
    2 after the first reclaim, and so on.
    """

    id: str
    payload: str
    token: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One picture in a sender's index: its object keys and the prompt shown beside it.

    ``made_at`` is when the store recorded it (seconds since the epoch, the store's clock); it is
    ignored when an entry is remembered.
    """

    key: str
    preview_key: str
    prompt: str = ""
    made_at: float = 0.0


@dataclass(frozen=True, slots=True)
class StoreReport:
    """What ``imgbot doctor`` says of the store."""

    kind: str
    """"sqlite" or "redis"."""
    location: str
    """Where it is, password removed: a file path or redis://host:port/db."""
    version: str
    """The server's version (Redis) or SQLite's library version."""


class StateStore(Protocol):
    """The store every replica of a bot shares. Each call is atomic; each raises
    ``StoreUnavailable`` when the store cannot answer."""

    async def claim_message(self, msg_id: str, ttl_seconds: float) -> bool:
        """True for the first claim of ``msg_id`` within ``ttl_seconds``, False for later ones."""
        ...

    async def rate(self, user: str, limit: int, window_seconds: float) -> Verdict:
        """Count one message by ``user`` against ``limit`` per ``window_seconds``.

        Refused messages are not counted; past the limit the first refusal in a window is
        "tell", the rest "quiet".
        """
        ...

    async def rate_extra(self, user: str, wanted: int, limit: int, window_seconds: float) -> int:
        """Count up to ``wanted`` more pictures of a message ``rate`` allowed; return how many
        fit within ``limit`` per ``window_seconds`` (0 when none). Never "tells"."""
        ...

    async def rate_give_back(self, user: str, hits: int) -> None:
        """Uncount ``user``'s ``hits`` newest hits: the extra pictures ``rate_extra`` counted
        for a message that was then not accepted (busy, or already known)."""
        ...

    async def submit(
        self,
        job_id: str,
        payload: str,
        *,
        max_waiting: int,
        claim_for: str | None,
        lease_seconds: float,
    ) -> Job | Literal["waiting", "busy", "known"]:
        """Accept a request as a durable job.

        With ``claim_for`` (a worker with a free slot) the job is claimed at once for that
        worker and returned. Otherwise it waits, unless ``max_waiting`` jobs already wait
        ("busy": nothing stored). "known": a job with this id exists already.
        """
        ...

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """Claim the job whose lease ran out longest ago, else the oldest waiting job, or None."""
        ...

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Renew ``job``'s lease; False when the claim is no longer ours (reclaimed or done)."""
        ...

    async def begin_reply(self, job: Job, lease_seconds: float) -> bool:
        """The fence before the final reply: True (and the lease renewed) only for the current
        claim of an unfinished job. After True, the job counts as replying."""
        ...

    async def finish(self, job: Job) -> None:
        """Record that ``job``'s final reply was sent (or given up): no one claims it again."""
        ...

    async def waiting(self) -> int:
        """How many jobs wait for a worker."""
        ...

    async def remember_image(
        self,
        owner: str,
        conversation: str,
        entry: ImageEntry,
        *,
        keep: int,
        max_age_seconds: float,
    ) -> None:
        """Add ``entry`` to the pictures of ``owner`` in ``conversation`` (once: the same key
        again changes nothing), then keep only the newest ``keep`` younger than
        ``max_age_seconds``."""
        ...

    async def recent_images(
        self, owner: str, conversation: str, *, limit: int, max_age_seconds: float
    ) -> list[ImageEntry]:
        """The newest ``limit`` pictures of ``owner`` in ``conversation`` younger than
        ``max_age_seconds``, newest first."""
        ...

    async def report(self) -> StoreReport:
        """Check the store answers and takes writes; raise ``StoreUnavailable`` if not."""
        ...

    async def aclose(self) -> None:
        """Release connections, locks and files."""
        ...
