"""The shared state store in Redis (>= 7) or Valkey, through redis-py's asyncio client.

Every call that reads and then writes is one Lua script (``register_script``: EVALSHA, and EVAL
again after a restart emptied the script cache), and every script takes its time from Redis
``TIME``, so replicas with skewed clocks still agree on leases and windows. Keys, under the
prefix the app passes (``imgbot:<client id>:``):

    msg:<id>      claimed msgId (SET NX PX)          rate:<user>  sorted set of allowed messages
    told:<user>   "told once" marker for a window    job:<id>     hash: payload, state, token,
    waiting       sorted set of waiting ids by seq                attempt, worker, lease_until
    leases        sorted set of leased ids by lease end (ms)      seq  counter for FIFO order
    img:<hash>    one sender's pictures in one conversation: sorted set of JSON entries by the
                  time recorded (ms); <hash> is a SHA-256 of [sender, conversation], whose ids
                  may hold ':'

Scripts touch job hashes they find through the sets, so the store needs one Redis (with replicas
or Sentinel), not Redis Cluster. Every redis error becomes ``StoreUnavailable`` naming the URL
without its password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from imgbot.config.state_url import shown_url
from imgbot.state.base import (
    DONE_KEPT_SECONDS,
    ImageEntry,
    Job,
    StoreReport,
    StoreUnavailable,
    Verdict,
)
from imgbot.state.scripts import BEGIN, CLAIM, FINISH, RATE, RATE_EXTRA, RECENT, REMEMBER, SUBMIT

T = TypeVar("T")
MIN_VERSION = (7, 0)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def version_tuple(version: str) -> tuple[int, ...]:
    """``"7.0.15"`` as ``(7, 0, 15)``; parts that are not numbers end it."""
    numbers: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


class RedisStore:
    """The ``StateStore`` every replica shares, in one Redis database."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        *,
        location: str,
        secret: str = "",
        done_kept_seconds: float = DONE_KEPT_SECONDS,
    ) -> None:
        """Use ``client`` (built by ``from_url``, or injected); ``location`` is shown in errors."""
        self._redis = client
        self._prefix = prefix
        self.location = location
        self._secret = secret
        self._done_kept_ms = _ms(done_kept_seconds)
        self._rate = client.register_script(RATE)
        self._submit = client.register_script(SUBMIT)
        self._rate_extra = client.register_script(RATE_EXTRA)
        self._claim = client.register_script(CLAIM)
        self._begin = client.register_script(BEGIN)
        self._finish = client.register_script(FINISH)
        self._remember = client.register_script(REMEMBER)
        self._recent = client.register_script(RECENT)

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str,
        *,
        timeout: float = 2.0,
        done_kept_seconds: float = DONE_KEPT_SECONDS,
    ) -> RedisStore:
        """A store on ``redis://`` or ``rediss://`` (TLS) ``url``; nothing connects yet."""
        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            # One immediate retry on a dropped connection: after Redis restarted, the first call
            # on a pooled connection finds it closed and reconnects. Timeouts are not retried,
            # so a hung server costs one STATE_TIMEOUT_SECONDS.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        secret = client.connection_pool.connection_kwargs.get("password") or ""
        return cls(
            client,
            prefix,
            location=shown_url(url),
            secret=str(secret),
            done_kept_seconds=done_kept_seconds,
        )

    def __repr__(self) -> str:
        return f"RedisStore({self.location!r}, prefix={self._prefix!r})"

    async def _call(self, pending: Awaitable[T]) -> T:
        """Await one redis call; any redis error becomes StoreUnavailable, password removed."""
        try:
            return await pending
        except (RedisError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            if self._secret:
                reason = reason.replace(self._secret, "***")
            raise StoreUnavailable(f"state store {self.location}: {reason}") from None

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    # The protocol ---------------------------------------------------------------------------

    async def claim_message(self, msg_id: str, ttl_seconds: float) -> bool:
        """True for the first claim of ``msg_id`` within ``ttl_seconds`` (SET NX PX)."""
        key = self._key("msg", msg_id)
        done = await self._call(self._redis.set(key, "1", nx=True, px=max(1, _ms(ttl_seconds))))
        return bool(done)

    async def rate(self, user: str, limit: int, window_seconds: float) -> Verdict:
        """A sliding window of allowed messages; past the limit "tell" once a window."""
        keys = [self._key("rate", user), self._key("told", user)]
        args: list[str | int] = [limit, max(1, _ms(window_seconds)), secrets.token_hex(8)]
        verdict = await self._call(self._rate(keys=keys, args=args))
        if verdict not in ("allow", "tell", "quiet"):
            raise StoreUnavailable(f"state store {self.location}: unexpected answer {verdict!r}")
        return verdict  # type: ignore[no-any-return]

    async def rate_extra(self, user: str, wanted: int, limit: int, window_seconds: float) -> int:
        """The same sliding window as ``rate``: as many hits as still fit, up to ``wanted``."""
        keys = [self._key("rate", user)]
        args: list[str | int] = [wanted, limit, max(1, _ms(window_seconds)), secrets.token_hex(8)]
        granted = await self._call(self._rate_extra(keys=keys, args=args))
        if not isinstance(granted, int) or not 0 <= granted <= wanted:
            raise StoreUnavailable(f"state store {self.location}: unexpected answer {granted!r}")
        return granted

    async def rate_give_back(self, user: str, hits: int) -> None:
        """Remove ``user``'s ``hits`` newest rate hits (ZPOPMAX: the highest scores)."""
        if hits > 0:
            await self._call(self._redis.zpopmax(self._key("rate", user), hits))

    async def submit(
        self,
        job_id: str,
        payload: str,
        *,
        max_waiting: int,
        claim_for: str | None,
        lease_seconds: float,
    ) -> Job | Literal["waiting", "busy", "known"]:
        """Store the job: claimed at once for ``claim_for``, else waiting (or "busy")."""
        token = secrets.token_hex(16)
        keys = [
            self._key("job", job_id),
            self._key("waiting"),
            self._key("leases"),
            self._key("seq"),
        ]
        worker = claim_for or ""
        args: list[str | int] = [job_id, payload, max_waiting, worker, _ms(lease_seconds), token]
        answer = await self._call(self._submit(keys=keys, args=args))
        if answer == "claimed":
            return Job(job_id, payload, token, 1)
        if answer in ("waiting", "busy", "known"):
            return answer  # type: ignore[no-any-return]
        raise StoreUnavailable(f"state store {self.location}: unexpected answer {answer!r}")

    async def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """The job whose lease ran out longest ago, else the oldest waiting one."""
        token = secrets.token_hex(16)
        keys = [self._key("waiting"), self._key("leases")]
        args: list[str | int] = [self._key("job", ""), worker, _ms(lease_seconds), token]
        answer: Any = await self._call(self._claim(keys=keys, args=args))
        if not answer:
            return None
        job_id, payload, attempt = answer
        return Job(str(job_id), str(payload), token, int(attempt))

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Renew the lease of the current claim; False when it is no longer ours."""
        return await self._fence(job, lease_seconds, "")

    async def begin_reply(self, job: Job, lease_seconds: float) -> bool:
        """The final-reply fence: only the current claim of an unfinished job passes."""
        return await self._fence(job, lease_seconds, "replying")

    async def _fence(self, job: Job, lease_seconds: float, new_state: str) -> bool:
        keys = [self._key("job", job.id), self._key("leases")]
        args: list[str | int] = [job.token, _ms(lease_seconds), job.id, new_state]
        return bool(await self._call(self._begin(keys=keys, args=args)))

    async def finish(self, job: Job) -> None:
        """Mark the job done whoever holds it now: its reply was sent, so no one sends another."""
        keys = [self._key("job", job.id), self._key("leases"), self._key("waiting")]
        await self._call(self._finish(keys=keys, args=[job.id, self._done_kept_ms]))

    async def waiting(self) -> int:
        """How many jobs wait for a worker."""
        return int(await self._call(self._redis.zcard(self._key("waiting"))))

    def _images_key(self, owner: str, conversation: str) -> str:
        named = json.dumps([owner, conversation]).encode()
        return self._key("img", hashlib.sha256(named).hexdigest()[:32])

    async def remember_image(
        self,
        owner: str,
        conversation: str,
        entry: ImageEntry,
        *,
        keep: int,
        max_age_seconds: float,
    ) -> None:
        """Add the picture once (one entry per object key), then drop what is too old or beyond
        the newest ``keep``."""
        member = json.dumps(
            {"key": entry.key, "preview_key": entry.preview_key, "prompt": entry.prompt},
            ensure_ascii=False,
            sort_keys=True,
        )
        keys = [self._images_key(owner, conversation)]
        args: list[str | int] = [member, keep, max(1, _ms(max_age_seconds)), entry.key]
        await self._call(self._remember(keys=keys, args=args))

    async def recent_images(
        self, owner: str, conversation: str, *, limit: int, max_age_seconds: float
    ) -> list[ImageEntry]:
        """The newest pictures younger than ``max_age_seconds``, newest first."""
        keys = [self._images_key(owner, conversation)]
        args: list[str | int] = [limit, max(1, _ms(max_age_seconds))]
        answer: Any = await self._call(self._recent(keys=keys, args=args))
        entries = []
        for member, score in zip(answer[::2], answer[1::2], strict=True):
            try:
                fields = json.loads(member)
                entries.append(
                    ImageEntry(
                        str(fields["key"]),
                        str(fields["preview_key"]),
                        str(fields.get("prompt", "")),
                        float(score) / 1000,
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # not an entry this store wrote: nothing to list
        return entries

    async def report(self) -> StoreReport:
        """Check Redis answers, is 7 or later, and takes writes."""
        info: dict[str, Any] = await self._call(self._redis.info("server"))
        version = str(info.get("valkey_version") or info.get("redis_version") or "")
        if version_tuple(str(info.get("redis_version", ""))) < MIN_VERSION:
            raise StoreUnavailable(
                f"state store {self.location}: Redis {version or '(unknown version)'} is too old; "
                "imgbot needs Redis 7 or later (or Valkey)"
            )
        await self._call(self._redis.set(self._key("probe"), "1", px=60_000))
        return StoreReport("redis", self.location, version)

    async def aclose(self) -> None:
        """Close the client's connections."""
        # Closing connections to a server that is gone: nothing is left to release.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
