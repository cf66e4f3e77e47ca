"""Durable jobs across processes: `imgbot run` replicas sharing one Redis, and the embedded store.

Real processes against one simulator (several connections, a random one per push), real MinIO,
a real redis-server; a fake provider whose generations hang until released stands in for a slow
model. Waits are for events (replies, log lines), never sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.simulator import DingTalkSimulator
from imgbot.state.redis_store import RedisStore
from tests.bot_harness import image_replies, running_bot, send_again
from tests.bot_process import BotProcess, bot_process
from tests.conftest import set_up_bucket
from tests.fake_providers import FakeProviders, FakeProvidersThread
from tests.polling import wait_until
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
CAT = "帮我画一只可爱的小猫"
LEASE = "3"


@asynccontextmanager
async def own_simulator(seed: int = 7) -> AsyncIterator[DingTalkSimulator]:
    """A simulator with an AppKey of its own (the store's keys are per AppKey), seeded."""
    async with DingTalkSimulator(client_id=f"sim-{uuid.uuid4().hex[:10]}", seed=seed) as sim:
        yield sim


SlowProvider = tuple[FakeProvidersThread, FakeProviders, dict[str, str]]


@pytest.fixture
def slow_provider(providers_thread: FakeProvidersThread) -> SlowProvider:
    """An OpenAI-compatible stand-in whose generations hang until released, and the bot's env."""
    providers_thread.fake.script.outcome = "hang"
    return providers_thread, providers_thread.fake, providers_thread.fake.env_for("openai")


@contextmanager
def replicas(
    simulator: DingTalkSimulator, folder: Path, count: int, **env: str
) -> Iterator[list[BotProcess]]:
    """``count`` bot processes, each with its own log, all started before the block runs."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(bot_process(simulator, folder / f"bot{n}.log", **env))
            for n in range(count)
        ]


def log_lines(bots: list[BotProcess], needle: str) -> int:
    """Lines containing ``needle`` across the bots' logs."""
    return sum(line.count(needle) for bot in bots for line in bot.logs().splitlines())


def accepted_ids(bot: BotProcess) -> set[str]:
    """msgIds this bot accepted as jobs (its admission log lines)."""
    return {
        line.split("msg ", 1)[1].split(":", 1)[0]
        for line in bot.logs().splitlines()
        if "admission=accepted" in line
    }


def images_by_msg(simulator: DingTalkSimulator) -> Counter[str]:
    """Image replies per incoming msgId."""
    return Counter(r.msg_id or "?" for r in image_replies(simulator))


async def send_texts(simulator: DingTalkSimulator, count: int, **kwargs: Any) -> list[str]:
    """Send ``count`` texts (each from its own user unless ``sender_staff_id`` is given)."""
    ids = []
    for n in range(count):
        who = kwargs.get("sender_staff_id") or f"user{n:03d}"
        message = await simulator.send_text(f"{CAT} {n}", **{**kwargs, "sender_staff_id": who})
        ids.append(str(message["msgId"]))
    return ids


async def connected(simulator: DingTalkSimulator, count: int) -> None:
    await simulator.wait_until(lambda: simulator.connected_count == count, timeout=60)


async def test_killed_replica_requests_finished_once(
    redis_url: str, s3_env: dict[str, str], tmp_path: Path, slow_provider: SlowProvider
) -> None:
    """SIGKILL one of three replicas mid-generation: every accepted request gets one image."""
    set_up_bucket()
    async with own_simulator() as simulator:
        providers, provider, env = slow_provider
        with replicas(
            simulator,
            tmp_path,
            3,
            STATE_URL=redis_url,
            REQUEST_RECLAIM_SECONDS=LEASE,
            MAX_CONCURRENT_GENERATIONS="2",
            **env,
        ) as bots:
            await connected(simulator, 3)
            sent = await send_texts(simulator, 6)
            await wait_until(lambda: provider.hanging == 6, timeout=60)
            victim = max(bots, key=lambda bot: len(accepted_ids(bot)))
            orphaned = accepted_ids(victim)
            assert orphaned
            victim.process.kill()
            victim.process.wait()
            killed_at = time.monotonic()
            await simulator.wait_until(lambda: simulator.connected_count == 2, timeout=30)
            providers.release()
            alive = [bot for bot in bots if bot is not victim]
            await wait_until(lambda: set(images_by_msg(simulator)) >= orphaned, timeout=90)
            finished_after = time.monotonic() - killed_at
            # Each job ends in one outcome line where it finished; wait for all six.
            await wait_until(lambda: log_lines(alive, "outcome=") >= len(sent), timeout=60)
            assert all(bot.process.poll() is None for bot in alive)
    assert images_by_msg(simulator) == Counter(dict.fromkeys(sent, 1))
    progress = Counter(r.msg_id for r in simulator.replies if r.text == chat_texts.PROGRESS)
    assert progress == Counter(dict.fromkeys(sent, 1))
    print(f"RELIABILITY reclaimed_finished_seconds={finished_after:.2f} lease={LEASE}")


async def test_one_msg_id_to_every_replica_answered_once(
    redis_url: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """One msgId delivered to each of three replicas gets one progress reply and one image."""
    set_up_bucket()
    async with own_simulator() as simulator:
        with replicas(simulator, tmp_path, 3, STATE_URL=redis_url) as bots:
            await connected(simulator, 3)
            message = await simulator.send_text(CAT)
            for _ in range(40):  # random pushes: repeat until every connection had the msgId
                if len(simulator.deliveries_by_connection()) == 3:
                    break
                await send_again(simulator, message)
            assert len(simulator.deliveries_by_connection()) == 3
            deliveries = len(simulator.deliveries)
            await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=60)
            # Every delivery but the first is turned away, by the local filter or the store.
            await wait_until(
                lambda: log_lines(bots, "duplicate delivery ignored") == deliveries - 1, timeout=30
            )
    assert simulator.replies[0].text == chat_texts.PROGRESS
    assert len(simulator.replies) == 2
    print(f"RELIABILITY redelivered_to_replicas deliveries={deliveries} answers=1")


async def test_rate_held_across_replicas(
    redis_url: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """A user limited to 2 a minute gets 2 images across three replicas, and is told once."""
    set_up_bucket()
    async with own_simulator() as simulator:
        with replicas(
            simulator, tmp_path, 3, STATE_URL=redis_url, USER_REQUESTS_PER_MINUTE="2"
        ) as bots:
            await connected(simulator, 3)
            await send_texts(simulator, 8, sender_staff_id="user-fast")
            await wait_until(lambda: log_lines(bots, "admission=") == 8, timeout=60)
            await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=60)
            served = [bot for bot in bots if log_lines([bot], "admission=")]
    assert len(served) >= 2  # the pushes did spread over replicas
    texts = Counter(r.text for r in simulator.replies if r.msgtype == "text")
    assert texts == {chat_texts.PROGRESS: 2, chat_texts.RATE_LIMITED: 1}


async def test_redis_killed_and_restarted_under_traffic(
    redis_server: RedisServer, redis_url: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """Redis killed and back under traffic: one answer per message, replicas up, images again."""
    set_up_bucket()
    async with own_simulator() as simulator:
        with replicas(
            simulator, tmp_path, 3, STATE_URL=redis_url, REQUEST_RECLAIM_SECONDS=LEASE
        ) as bots:
            await connected(simulator, 3)
            before = await send_texts(simulator, 4)
            await wait_until(lambda: len(images_by_msg(simulator)) == 4, timeout=60)
            redis_server.kill()
            during = await send_texts(simulator, 4)
            await wait_until(lambda: len(answered(simulator)) == 8, timeout=60)
            redis_server.start()
            after = await send_texts(simulator, 4)
            await wait_until(lambda: len(answered(simulator)) == 12, timeout=60)
            await wait_until(lambda: log_lines(bots, "admission=") == 12, timeout=30)
            assert all(bot.process.poll() is None for bot in bots)
    assert answered(simulator) == Counter(dict.fromkeys(before + during + after, 1))
    store_down = {r.msg_id for r in simulator.replies if r.text == chat_texts.STORE_DOWN}
    assert store_down == set(during)
    assert set(images_by_msg(simulator)) == set(before + after)


def answered(simulator: DingTalkSimulator) -> Counter[str]:
    """Final answers per msgId: images and every text but the progress sentence."""
    return Counter(r.msg_id or "?" for r in simulator.replies if r.text != chat_texts.PROGRESS)


async def _killed_then_restarted(
    simulator: DingTalkSimulator,
    tmp_path: Path,
    env: dict[str, str],
    provider: FakeProviders,
    on_kill: Callable[[], None],
    webhook_ttl_s: float = 5400,
) -> None:
    """Start a bot, SIGKILL it mid-generation, call ``on_kill``, restart it until a job ends."""
    with bot_process(simulator, tmp_path / "bot1.log", **env) as first:
        await simulator.wait_connected(timeout=30)
        await simulator.send_text(CAT, webhook_ttl_s=webhook_ttl_s)
        await wait_until(lambda: provider.hanging == 1, timeout=30)
        first.process.kill()
        first.process.wait()
    on_kill()
    with bot_process(simulator, tmp_path / "bot2.log", **env) as second:
        await wait_until(lambda: "outcome=" in second.logs(), timeout=60)


async def test_embedded_store_restart_finishes_once(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    tmp_path: Path,
    slow_provider: SlowProvider,
) -> None:
    """SQLite: killed mid-generation, restarted on the file, one image (robot API: webhook gone)."""
    set_up_bucket()
    providers, provider, env = slow_provider
    env |= {"STATE_URL": f"sqlite:///{tmp_path}/state.db", "REQUEST_RECLAIM_SECONDS": LEASE}
    # The webhook outlives the progress reply, not the lease plus a restart.
    await _killed_then_restarted(
        simulator, tmp_path, env, provider, providers.release, webhook_ttl_s=2
    )
    assert simulator.replies[0].text == chat_texts.PROGRESS
    assert len(image_replies(simulator)) == 1 and len(simulator.replies) == 2
    assert image_replies(simulator)[0].channel == "robot_o2o"


async def test_gives_up_after_max_attempts(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    tmp_path: Path,
    slow_provider: SlowProvider,
) -> None:
    """A request whose worker died REQUEST_MAX_ATTEMPTS times is answered with a clear failure."""
    set_up_bucket()
    _providers, provider, env = slow_provider
    env |= {"REQUEST_RECLAIM_SECONDS": LEASE, "REQUEST_MAX_ATTEMPTS": "1"}
    await _killed_then_restarted(simulator, tmp_path, env, provider, lambda: None)
    assert [r.text for r in simulator.replies] == [chat_texts.PROGRESS, chat_texts.GAVE_UP]


async def test_store_outage_seen_by_health(
    simulator: DingTalkSimulator, redis_server: RedisServer, redis_url: str, s3_env: dict[str, str]
) -> None:
    """/healthz turns unhealthy while Redis is down and healthy again on its own once it is back."""
    async with running_bot(simulator, state_url=redis_url) as bot:
        await wait_until(lambda: bot.health()[0], timeout=30)
        redis_server.kill()
        await wait_until(lambda: bot.health()[1]["state_store_ok"] is False, timeout=30)
        assert bot.health()[0] is False
        redis_server.start()
        await wait_until(lambda: bot.health()[0], timeout=30)
        await simulator.send_text(CAT)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)


async def test_lost_lease_stops_the_work(
    simulator: DingTalkSimulator,
    redis_server: RedisServer,
    redis_url: str,
    s3_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    slow_provider: SlowProvider,
) -> None:
    """A worker whose lease another worker took (store cut off) stops that job and posts nothing."""
    caplog.set_level(logging.INFO)
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    thief = RedisStore.from_url(redis_url, f"imgbot:{simulator.client_id}:")
    try:
        providers, provider, env = slow_provider
        settings = {key.lower(): value for key, value in env.items()}
        async with running_bot(
            simulator,
            state_url=f"redis://127.0.0.1:{proxy.port}/0",
            request_reclaim_seconds=1,
            max_concurrent_generations=1,
            **settings,
        ):
            await simulator.send_text(CAT)
            await wait_until(lambda: provider.hanging == 1, timeout=30)
            proxy.cut()
            job = None
            for _ in range(100):  # the lease runs out on Redis's clock, about 1 s from now
                job = await thief.claim("another-worker", 60)
                if job is not None:
                    break
                await asyncio.sleep(0.1)
            assert job is not None and job.attempt == 2
            proxy.restore()
            await wait_until(lambda: "lease lost to another worker" in caplog.text, timeout=30)
            providers.release()
            await thief.finish(job)
    finally:
        await thief.aclose()
        await proxy.stop()
    assert [r.text for r in simulator.replies] == [chat_texts.PROGRESS]
