"""Reliability under faults, load and hostile input: real MinIO, the simulator, the real SDK."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import IMAGE_RE, LINK_RE, image_replies, running_bot
from tests.bot_process import bot_process
from tests.conftest import set_up_bucket
from tests.fake_providers import FakeProvidersThread
from tests.minio_server import MinioServer, minio_binary
from tests.polling import wait_until
from tests.processes import free_port

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
CAT = "帮我画一只可爱的小猫"
FINAL_TEXTS = {chat_texts.BUSY, chat_texts.RATE_LIMITED, chat_texts.STORAGE, chat_texts.FAILED}


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def finals_by_message(simulator: DingTalkSimulator) -> Counter[str]:
    """How many final answers (image or a clear refusal) each incoming message got."""
    return Counter(
        r.msg_id or "?"
        for r in simulator.replies
        if r.text != chat_texts.PROGRESS and not r.text.endswith(chat_texts.PROGRESS)
    )


async def test_storage_killed_then_back(
    simulator: DingTalkSimulator, tmp_path: Path, bucket: str
) -> None:
    """MinIO killed: each user hears of it; once back, new requests and old links work."""
    server = MinioServer(minio_binary(), tmp_path / "minio" / "data")
    server.start()
    env = {
        "s3_endpoint": server.endpoint,
        "s3_access_key": server.access_key,
        "s3_secret_key": server.secret_key,
        "s3_bucket": bucket,
        "s3_timeout_seconds": 3,
    }
    try:
        async with running_bot(simulator, **env) as bot:
            await simulator.send_text(CAT, sender_staff_id="before")
            await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
            earlier = IMAGE_RE.findall(image_replies(simulator)[0].text)[0]
            server.kill()
            started = time.monotonic()
            for user in range(3):
                await simulator.send_text(CAT, sender_staff_id=f"outage{user}")
            await wait_until(
                lambda: [r.text for r in simulator.replies].count(chat_texts.STORAGE) == 3,
                timeout=30,
            )
            outage_reply_s = time.monotonic() - started
            # Nothing stays stuck: each request finishes right after its reply is accepted.
            await wait_until(lambda: bot.metrics.in_flight_now == 0, timeout=5)
            # A failed upload makes /healthz say so at once, not after the freshness window.
            healthy, detail = bot.health()
            assert not healthy and detail["storage_ok"] is False
            await asyncio.to_thread(server.start)
            await simulator.send_text(CAT, sender_staff_id="after")
            await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=30)
            assert bot.health()[0]
        assert await asyncio.to_thread(status_of, earlier) == 200
    finally:
        server.stop()
    print(f"RELIABILITY outage_reply_seconds={outage_reply_s:.2f}")


async def test_reconnect_with_backoff(
    simulator: DingTalkSimulator, s3_env: dict[str, str], no_retry_waits: list[float]
) -> None:
    """Dropped and refused, the bot backs off exponentially, reconnects, and answers once."""
    async with running_bot(simulator) as bot:
        simulator.refuse_connections = True
        opened_before = simulator.connections_opened
        await simulator.drop_connections()
        await wait_until(lambda: not bot.connected)
        await wait_until(lambda: len(no_retry_waits) >= 8)
        simulator.refuse_connections = False
        await simulator.wait_connected(timeout=30)
        assert simulator.connections_opened == opened_before + 1
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert len(image_replies(simulator)) == 1
    # Doubling from 0.5 s with ±20 % jitter, capped at 30 s; a lost connection counts as attempt 1.
    for attempt, waited in enumerate(no_retry_waits[:8], start=1):
        expected = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert 0.8 * expected <= waited <= 1.2 * expected, (attempt, waited)
    assert bot.metrics.retries()["stream"] >= 8


async def test_burst_25_users_then_group_flood(
    simulator: DingTalkSimulator, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """25 users at once, then 100 group messages in 10 s: each gets one clear final answer."""
    port = free_port()
    set_up_bucket()
    with bot_process(
        simulator,
        tmp_path / "bot.log",
        METRICS_PORT=str(port),
        MAX_CONCURRENT_GENERATIONS="4",
        USER_REQUESTS_PER_MINUTE="6",
    ) as bot:
        await simulator.wait_connected(timeout=30)
        started = time.monotonic()
        sent = await asyncio.gather(
            *(simulator.send_text(CAT, sender_staff_id=f"burst{u}") for u in range(25))
        )
        ids = [str(m["msgId"]) for m in sent]
        await wait_until(lambda: all(finals_by_message(simulator)[i] >= 1 for i in ids), 60)
        burst_s = time.monotonic() - started
        flood_started = time.monotonic()
        for n in range(100):
            message = await simulator.send_text(
                f"{CAT} #{n}", group=True, sender_staff_id=f"member{n % 20}"
            )
            ids.append(str(message["msgId"]))
            await asyncio.sleep(0.1)
        await wait_until(lambda: all(finals_by_message(simulator)[i] >= 1 for i in ids), 60)
        flood_s = time.monotonic() - flood_started
        metrics = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
        peak_mb = bot.peak_rss_mb()
        code, _ = bot.terminate()
    finals = finals_by_message(simulator)
    assert all(finals[i] == 1 for i in ids), "a message was answered twice or not at all"
    texts = {r.msg_id: r.text for r in simulator.replies if r.text != chat_texts.PROGRESS}
    assert all(IMAGE_RE.search(texts[i]) or texts[i].split(" ", 1)[-1] in FINAL_TEXTS for i in ids)
    peak = next(
        line for line in metrics.splitlines() if line.startswith("imgbot_in_flight_requests_peak ")
    )
    assert 1 <= float(peak.split()[1]) <= 4
    assert peak_mb < 400
    assert code == 0
    print(
        f"RELIABILITY burst25_seconds={burst_s:.2f} flood100_seconds={flood_s:.2f} "
        f"peak_rss_mb={peak_mb:.0f} images={len(image_replies(simulator))}"
    )


async def test_hanging_webhook_retried_and_capped(
    simulator: DingTalkSimulator, s3_env: dict[str, str], no_retry_waits: list[float]
) -> None:
    """A webhook that hangs times out and is retried; a webhook that always hangs is given up."""
    async with running_bot(simulator, reply_timeout_seconds=1, reply_attempts=3) as bot:
        simulator.webhook_script = [("hang", 3)]
        await simulator.send_text(CAT)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        simulator.webhook_script = [("hang", 4)] * 6
        before = simulator.webhook_attempts
        await simulator.send_text(CAT, sender_staff_id="other")
        await wait_until(lambda: sum(bot.metrics.outcomes().values()) == 2, timeout=30)
        # Three attempts for the progress reply, three for the image, then it gives up.
        assert simulator.webhook_attempts - before == 6
        assert bot.metrics.outcomes() == {"image": 1, "failed": 1}
    assert len(image_replies(simulator)) == 1


def _frame(data: Any) -> str:
    return json.dumps(
        {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "messageId": f"f{time.time_ns()}",
                "topic": "/v1.0/im/bot/messages/get",
                "contentType": "application/json",
            },
            "data": data if isinstance(data, str) else json.dumps(data),
        }
    )


TEXTS: list[tuple[str, str, set[str]]] = [
    ("markdown image", "![x](http://evil.example/a.png)", {"image"}),
    ("markdown link", "[点我](http://evil.example)", {"image"}),
    ("html img", "<img src=x onerror=alert(1)>", {"image"}),
    ("script", "<script>alert(1)</script>", {"image"}),
    ("heading", "# 标题\n## 二级", {"image"}),
    ("table", "| a | b |\n|---|---|", {"image"}),
    ("zero width only", "\u200b\u200c\u200d\ufeff", {"empty"}),
    ("zero width mixed", "画\u200b一只\u200d猫", {"image"}),
    ("rtl override", "\u202egnp.exe 猫", {"image"}),
    ("nul bytes", "画\x00一只\x00猫", {"image"}),
    ("only nul", "\x00\x00\x00", {"empty"}),
    ("10000 chars", "猫" * 10_000, {"too_long"}),
    ("1000 chars", "猫" * 1000, {"image"}),
    ("emoji", "🐱🐈‍⬛😺 画猫", {"image"}),
    ("emoji flood", "🐱" * 900, {"image"}),
    ("newlines", "\n\n\n猫\n\n\n", {"image"}),
    ("only spaces", " \t \n ", {"empty"}),
    ("help", "help", {"help"}),
    ("sql", "'; DROP TABLE users; --", {"image"}),
    ("path", "../../etc/passwd", {"image"}),
    ("url", "http://127.0.0.1:9000/imgbot/", {"image"}),
    ("astral plane", "\U0001f431\U0001d54f 猫", {"image"}),
    ("backslashes", "\\\\\\[x\\](y)", {"image"}),
    ("at all", "@all 画猫", {"image"}),
]
FRAMES: list[tuple[str, str]] = [
    ("not json", "{not json"),
    ("json string", '"hello"'),
    ("json array", "[1, 2, 3]"),
    ("no type", json.dumps({"headers": {}, "data": "{}"})),
    ("unknown type", json.dumps({"type": "WHATEVER", "headers": {}, "data": "{}"})),
    ("data not json", _frame("{broken")),
    ("data is list", _frame([1, 2])),
    ("no msgId", _frame({"msgtype": "text", "text": {"content": "猫"}})),
    ("text not object", _frame({"msgId": "m-x1", "msgtype": "text", "text": "猫"})),
    (
        "bad expiry",
        _frame(
            {
                "msgId": "m-x2",
                "msgtype": "text",
                "text": {"content": "猫"},
                "sessionWebhookExpiredTime": "soon",
            }
        ),
    ),
    (
        "no data",
        json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/im/bot/messages/get"}}),
    ),
    ("nested frame", "[" * 40_000),
    ("nested data", _frame("[" * 5_000 + "]" * 5_000)),
]


def quoting(replied: dict[str, Any]) -> dict[str, Any]:
    """A text message asking to change the message ``replied`` it quotes."""
    return {
        "msgtype": "text",
        "text": {"content": "加一顶帽子", "isReplyMsg": True, "repliedMsg": replied},
    }


async def test_hostile_corpus(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """Thirty-odd nasty inputs each get a defined outcome; the bot answers normally afterwards."""
    async with running_bot(
        simulator, user_requests_per_minute=1000, max_concurrent_generations=8
    ) as bot:
        base = await simulator.send_text("warm up")
        await wait_until(lambda: bot.metrics.outcomes().get("image") == 1, timeout=30)
        shape = {k: v for k, v in base.items() if k not in ("text", "msgtype", "msgId")}
        odd_messages = [
            ("unknown msgtype", {"msgtype": "interactiveCard", "content": {}}, {"not_text"}),
            ("50000 chars", {"msgtype": "text", "text": {"content": "猫" * 50_000}}, {"too_long"}),
            (
                "rich text",
                {"msgtype": "richText", "content": {"richText": [{"text": "猫"}]}},
                {"image"},  # text alone in richText is a drawing request like any text
            ),
            (
                "picture, hostile content",
                {"msgtype": "picture", "content": {"downloadCode": ["x"] * 1000}},
                {"picture_alone"},
            ),
            (
                "huge atUsers",
                {
                    "msgtype": "text",
                    "text": {"content": "画猫"},
                    "atUsers": [{"dingtalkId": f"d{i}"} for i in range(5000)],
                },
                {"image"},
            ),
        ]
        drawn = LINK_RE.search(image_replies(simulator)[0].text)
        assert drawn is not None
        odd_messages += [
            (
                "nested quote",
                quoting({"msgType": "text", "content": "[" * 40_000}),
                {"quote_unreadable"},
            ),
            (
                "another conversation's picture",
                {
                    **quoting({"msgType": "text", "content": {"text": drawn.group(1)}}),
                    "conversationId": "cid-elsewhere",
                },
                {"failed"},  # told the picture is no longer available; nothing edited
            ),
        ]
        cases = [
            (name, {"msgtype": "text", "text": {"content": text}}, want)
            for name, text, want in TEXTS
        ] + odd_messages
        for index, (name, payload, want) in enumerate(cases):
            before = bot.metrics.outcomes()
            await simulator.send_message({**shape, **payload, "msgId": f"hostile-{index}"})
            await wait_until(lambda b=before: bot.metrics.outcomes() != b, timeout=30)
            after = bot.metrics.outcomes()
            got = {k for k in after if after[k] != before.get(k)}
            assert got <= want, f"{name}: outcome {got}, expected {want}"
        outcomes = bot.metrics.outcomes()
        for name, raw in FRAMES:
            before = bot.metrics.frames()
            await simulator.send_frame(raw)
            # Every frame is counted once, as taken: wait for that, then look at what it became.
            await wait_until(lambda b=before: sum(bot.metrics.frames().values()) > sum(b.values()))
            frames = bot.metrics.frames()
            got = {k for k in frames if frames[k] != before.get(k)}
            assert got <= {"malformed", "ignored"}, f"{name} was taken as {got}"
        assert bot.metrics.outcomes() == outcomes
        assert bot.connected
        images_before = len(image_replies(simulator))
        await simulator.send_text(CAT, msg_id="after-corpus")
        await wait_until(lambda: len(image_replies(simulator)) == images_before + 1, timeout=30)
    for reply in image_replies(simulator):
        assert "evil.example/a.png)" not in reply.text and "<script" not in reply.text


async def test_no_secrets_or_signed_urls_in_logs(
    simulator: DingTalkSimulator, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """A DEBUG-level run (images, a failure, retries) logs no secret and no signed URL."""
    set_up_bucket()
    simulator.webhook_script = [500]
    with bot_process(simulator, tmp_path / "bot.log", LOG_LEVEL="DEBUG") as bot:
        await simulator.wait_connected(timeout=30)
        await simulator.send_text(CAT)
        await simulator.send_text("猫" * 2000)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        code, _ = bot.terminate()  # drains: every log line is written once it has exited
        logs = bot.logs()
    assert code == 0
    assert "outcome=image" in logs
    url = IMAGE_RE.findall(image_replies(simulator)[0].text)[0]
    signature = url.split("X-Amz-Signature=")[1]
    for secret in (
        s3_env["S3_SECRET_KEY"],
        simulator.client_secret,
        signature,
        url,
        "X-Amz-Signature=",
        "X-Amz-Credential=",
    ):
        assert secret not in logs


@pytest.mark.parametrize(("grace", "expect_image"), [("8", True), ("0", False)])
async def test_sigterm_during_generation(
    simulator: DingTalkSimulator,
    s3_env: dict[str, str],
    tmp_path: Path,
    grace: str,
    expect_image: bool,
    providers_thread: FakeProvidersThread,
) -> None:
    """SIGTERM mid-generation exits 0 within its grace; the image comes in the grace, or after a
    restart."""
    set_up_bucket()
    providers, provider = providers_thread, providers_thread.fake
    provider.script.outcome = "hang"
    env = {
        "SHUTDOWN_GRACE_SECONDS": grace,
        "REQUEST_RECLAIM_SECONDS": "2",
        **provider.env_for("openai"),
    }
    with bot_process(simulator, tmp_path / "bot.log", **env) as bot:
        await simulator.wait_connected(timeout=30)
        await simulator.send_text(CAT)
        await wait_until(lambda: provider.hanging == 1)  # generation has begun
        started = time.monotonic()
        bot.process.send_signal(signal.SIGTERM)
        # The bot lets go of DingTalk first; only then may the generation finish.
        await simulator.wait_until(lambda: not simulator.connected)
        if expect_image:
            providers.release()
        # A bot that waited for the generation would wait for the stand-in's 60 s hang.
        code = await asyncio.to_thread(bot.process.wait, 30)
        took = time.monotonic() - started
    assert code == 0
    assert (len(image_replies(simulator)) == 1) is expect_image
    if not expect_image:
        assert [r.text for r in simulator.replies] == [chat_texts.PROGRESS]
        providers.release()
        with bot_process(simulator, tmp_path / "bot2.log", **env):
            await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=60)
            await wait_until(lambda: provider.hanging == 0)
        assert simulator.replies[0].text == chat_texts.PROGRESS
        assert len(simulator.replies) == 2
    print(f"RELIABILITY sigterm_exit_seconds_grace{grace}={took:.2f}")
