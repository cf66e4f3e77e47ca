"""The bot end to end: the real dingtalk-stream SDK, the simulator and a real MinIO."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.errors import GeneratorError
from imgbot.generators.placeholder import PlaceholderGenerator
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import (
    IMAGE_RE,
    LINK_RE,
    image_replies,
    running_bot,
    send_again,
)
from tests.fake_providers import FakeProviders
from tests.polling import wait_until

pytestmark = [pytest.mark.minio, pytest.mark.e2e]
CAT = "帮我画一只可爱的小猫"


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"]


async def test_requester_cat(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """The old manual's test: a progress reply, then one Markdown image that loads, ACK 200."""
    async with running_bot(simulator):
        sent = await simulator.send_text(CAT)
        ack = await simulator.wait_for_ack(str(sent["msgId"]))
        replies = await simulator.wait_for_replies(2, timeout=30)
    assert ack["code"] == 200
    progress, answer = replies
    assert progress.msgtype == "text" and progress.text == chat_texts.PROGRESS
    assert answer.msgtype == "markdown" and answer.title == "图片已生成"
    preview = IMAGE_RE.search(answer.text)
    original = LINK_RE.search(answer.text)
    assert preview and original and CAT in answer.text
    for url in (preview.group(1), original.group(1)):
        status, content_type = await asyncio.to_thread(http_get, url)
        assert status == 200 and content_type.startswith("image/")
    assert len(image_replies(simulator)) == 1


async def test_group_message_mentions_sender(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """In a group the leading space is stripped and the sender is @-mentioned."""
    async with running_bot(simulator):
        await simulator.send_text(CAT, group=True, sender_staff_id="staff42")
        replies = await simulator.wait_for_replies(2, timeout=30)
    answer = replies[-1]
    assert answer.at_user_ids == ("staff42",) and "@staff42" in answer.text
    assert f"> {CAT}" in answer.text


async def test_duplicate_msg_id_one_image(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """The same msgId twice, and again after a dropped connection, gives one image reply."""
    async with running_bot(simulator) as bot:
        message = await simulator.send_text(CAT, msg_id="msg-dup-1")
        await send_again(simulator, message)
        assert bot.metrics.frames() == {"message": 1, "duplicate": 1}
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
        await simulator.drop_connections()
        await wait_until(lambda: not bot.connected)
        await simulator.wait_connected(timeout=15)
        await send_again(simulator, message)
        assert bot.metrics.frames() == {"message": 1, "duplicate": 2}
    assert len(image_replies(simulator)) == 1
    assert len(simulator.replies) == 2


async def test_webhook_500_twice_then_ok(
    simulator: DingTalkSimulator, s3_env: dict[str, str], no_retry_waits: list[float]
) -> None:
    """Two HTTP 500 answers are retried after growing waits; exactly one image reply arrives."""
    simulator.webhook_script = [500, 500]
    async with running_bot(simulator) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert len(image_replies(simulator)) == 1
    assert simulator.webhook_attempts == 4  # progress: 500, 500, ok; image: ok
    assert bot.metrics.retries() == {"reply": 2}
    assert len(no_retry_waits) == 2 and 0.4 <= no_retry_waits[0] <= 0.6
    assert 0.8 <= no_retry_waits[1] <= 1.2


async def test_webhook_errcode_falls_back_to_robot_api(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """errcode 300001 inside HTTP 200 sends the reply through the robot API instead."""
    simulator.webhook_script = [{"errcode": 300001, "errmsg": "session expired"}] * 2
    async with running_bot(simulator):
        await simulator.send_text(CAT)
        replies = await simulator.wait_for_replies(2, timeout=30)
    assert [r.channel for r in replies] == ["robot_o2o", "robot_o2o"]
    assert len(image_replies(simulator)) == 1


async def test_expired_webhook_uses_robot_api(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A message whose webhook has expired is answered through the robot API (group too)."""
    async with running_bot(simulator):
        await simulator.send_text(CAT, webhook_ttl_s=-10)
        await simulator.send_text(
            "画一座山", webhook_ttl_s=-10, group=True, sender_staff_id="staff7"
        )
        replies = await simulator.wait_for_replies(4, timeout=30)
    assert {r.channel for r in replies} == {"robot_o2o", "robot_group"}
    assert len(image_replies(simulator)) == 2


async def test_injection_is_defused(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """Markdown images and links in the prompt do not survive as working markup."""
    prompt = "画猫 ![x](http://evil.example/a.png) [点我](http://evil.example)"
    async with running_bot(simulator):
        await simulator.send_text(prompt)
        replies = await simulator.wait_for_replies(2, timeout=30)
    text = replies[-1].text
    urls = IMAGE_RE.findall(text) + LINK_RE.findall(text)
    assert len(urls) == 2 and not any("evil" in u for u in urls)
    assert "http://evil" not in text and "evil．example" in text  # full-width dot: no autolink


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"msgtype": "picture", "content": {"downloadCode": "abc"}}, chat_texts.PICTURE_ALONE),
        ({"msgtype": "text", "text": {"content": "   "}}, chat_texts.EMPTY),
        ({"msgtype": "text", "text": {"content": "猫" * 1001}}, "描述太长了"),
        ({"msgtype": "text", "text": {"content": "帮助"}}, "直接发一句描述"),
        ({"msgtype": "audio", "content": {"duration": 3}}, chat_texts.NOT_TEXT),
        ({"msgtype": "richText", "content": {"richText": [{"text": " "}]}}, chat_texts.EMPTY),
        (
            {"msgtype": "richText", "content": {"richText": [{"downloadCode": "d"}]}},
            chat_texts.PICTURE_ALONE,
        ),
    ],
)
async def test_odd_messages_get_clear_answers(
    simulator: DingTalkSimulator, s3_env: dict[str, str], message: dict[str, Any], expected: str
) -> None:
    """Pictures, voice, empty and over-long text and help get a clear answer; then a cat works."""
    async with running_bot(simulator):
        base = await simulator.send_text("placeholder to learn the shape")
        await simulator.wait_for_replies(2, timeout=30)
        odd = {k: v for k, v in base.items() if k not in ("text", "content", "msgtype")}
        await simulator.send_message({**odd, **message, "msgId": "odd-" + str(time.time())})
        replies = await simulator.wait_for_replies(3, timeout=30)
        assert expected in replies[2].text
        await simulator.send_text(CAT)
        await wait_until(lambda: len(image_replies(simulator)) == 2, timeout=30)


async def test_malformed_frames_do_not_crash(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Broken frames are ignored and the bot still answers the next message."""
    async with running_bot(simulator) as bot:
        await simulator.send_frame("{not json")
        await simulator.send_frame('{"type": "CALLBACK", "headers": {}, "data": "[1,2]"}')
        await simulator.send_frame('"just a string"')
        await simulator.send_message({"msgtype": "text"})
        await simulator.send_ping()
        await simulator.send_text(CAT)
        await simulator.wait_for_replies(2, timeout=30)
        assert bot.connected
    assert len(image_replies(simulator)) == 1


def callback_frame(message_id: str, data: str) -> str:
    """A CALLBACK frame on the bot topic carrying ``data`` (a JSON text) as DingTalk sends it."""
    headers = {"messageId": message_id, "topic": "/v1.0/im/bot/messages/get"}
    return json.dumps({"specVersion": "1.0", "type": "CALLBACK", "headers": headers, "data": data})


async def test_nested_frames_are_acked_and_answered_once(
    simulator: DingTalkSimulator, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A quote whose content is 40 KB of ``[`` is ACKed and answered once with the hint; frames
    and payloads nested past any message, or data that is no JSON text, are ACKed (when they carry
    an id) and ignored; the bot stays up, no task dies with its exception unseen."""
    deep_quote = {"msgType": "text", "content": "[" * 40_000}
    payload = '{"msgId": "deep-%s", "msgtype": "text", "text": {"content": "x", "repliedMsg": %s}}'
    async with running_bot(simulator) as bot:
        sent = await simulator.send_quote("改成蓝色", deep_quote)
        assert (await simulator.wait_for_ack(str(sent["msgId"])))["code"] == 200
        [answer] = await simulator.wait_for_replies(1, timeout=30)
        assert answer.text == chat_texts.QUOTE_UNREADABLE
        for depth in (100, 5_000):
            frame_id = f"deep-frame-{depth}"
            data = payload % (depth, "[" * depth + "]" * depth)
            await simulator.send_frame(callback_frame(frame_id, data))
            assert (await simulator.wait_for_ack(frame_id))["code"] == 200
        await simulator.send_frame("[" * 40_000)
        await simulator.send_frame('{"a": ' * 5_000)
        odd = json.loads(callback_frame("odd-data", "{}"))
        await simulator.send_frame(json.dumps({**odd, "data": {"msgId": "x"}}))
        assert (await simulator.wait_for_ack("odd-data"))["code"] == 200
        await simulator.send_text(CAT)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        assert bot.connected
        assert bot.metrics.frames()["malformed"] == 5
    gc.collect()  # a task that died with its exception unseen says so when collected
    assert len(simulator.replies) == 3  # the hint, then progress and the picture
    assert simulator.redeliveries == 0
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_busy_answer_over_concurrency_limit(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """With one slot and no queue, requests while it is drawing get the busy answer."""
    providers.script.outcome = "hang"
    async with running_bot(
        simulator,
        max_concurrent_generations=1,
        max_queued_requests=0,
        **providers.settings_for("openai"),
    ) as bot:
        for user in range(4):
            await simulator.send_text(CAT, sender_staff_id=f"u{user}")
        await wait_until(lambda: bot.metrics.outcomes() == {"busy": 3} and providers.hanging == 1)
        providers.release()
        await wait_until(lambda: bot.metrics.outcomes() == {"busy": 3, "image": 1}, timeout=30)
    texts = [r.text for r in simulator.replies]
    assert texts.count(chat_texts.BUSY) == 3
    assert len(image_replies(simulator)) == 1


async def test_a_busy_answer_gives_back_the_extra_pictures(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """「画4张」 answered busy twice costs its sender one rate hit each time, not four: with
    USER_REQUESTS_PER_MINUTE=6 the third 「画4张」 still gets all four pictures."""
    providers.script.outcome = "hang"
    async with running_bot(
        simulator,
        max_concurrent_generations=1,
        max_queued_requests=0,
        user_requests_per_minute=6,
        **providers.settings_for("openai"),
    ) as bot:
        await simulator.send_text(CAT, sender_staff_id="other")
        await wait_until(lambda: providers.hanging == 1)
        for busy in (1, 2):
            await simulator.send_text("画4张小猫", sender_staff_id="four")
            await wait_until(lambda: bot.metrics.outcomes() == {"busy": busy})  # noqa: B023
        providers.release()
        await wait_until(lambda: bot.metrics.outcomes() == {"busy": 2, "image": 1}, timeout=30)
        providers.script.outcome = "succeed"
        await simulator.send_text("画4张小猫", sender_staff_id="four")
        await wait_until(lambda: bot.metrics.outcomes().get("image") == 2, timeout=30)
    answer = image_replies(simulator)[-1]
    assert len(IMAGE_RE.findall(answer.text)) == 4
    assert chat_texts.FEWER_RATE.format(count=2) not in answer.text


async def test_rate_limit_per_user(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """A user over USER_REQUESTS_PER_MINUTE gets the slow-down answer."""
    async with running_bot(simulator, user_requests_per_minute=1):
        await simulator.send_text(CAT)
        await simulator.wait_for_replies(2, timeout=30)
        await simulator.send_text(CAT)
        replies = await simulator.wait_for_replies(3, timeout=30)
    assert replies[-1].text == chat_texts.RATE_LIMITED


async def test_metrics_and_health(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """/healthz is 200 while connected with storage answering; /metrics shows a handled message."""
    from tests.processes import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    async with running_bot(simulator, metrics_port=port) as bot:
        await wait_until(lambda: bot.health()[0])  # connected, storage and store answered
        status, body = await asyncio.to_thread(get, "/healthz")
        assert status == 200 and '"dingtalk_connected": true' in body
        await simulator.send_text(CAT)
        await simulator.wait_for_replies(2, timeout=30)
        await wait_until(lambda: bot.metrics.outcomes().get("image") == 1)
        status, text = await asyncio.to_thread(get, "/metrics")
        assert status == 200
        assert 'imgbot_messages_total{outcome="image"} 1.0' in text
        for stage in ("generate", "prepare", "upload", "reply"):
            assert f'imgbot_stage_seconds_count{{stage="{stage}"}} 1.0' in text
        assert "imgbot_in_flight_requests 0.0" in text
        stored = [ln for ln in text.splitlines() if ln.startswith("imgbot_stored_bytes_total")]
        assert stored and float(stored[0].split()[-1]) > 0
        await simulator.drop_connections()
        simulator.refuse_connections = True
        await wait_until(lambda: not bot.connected)
        status, _ = await asyncio.to_thread(get, "/healthz")
        assert status == 503
        simulator.refuse_connections = False


async def test_requests_queue_for_a_slot(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """With one slot and room in the queue, simultaneous requests wait and all get images."""
    async with running_bot(simulator, max_concurrent_generations=1, max_queued_requests=8) as bot:
        for user in range(4):
            await simulator.send_text(CAT, sender_staff_id=f"q{user}")
        await wait_until(lambda: len(image_replies(simulator)) == 4, timeout=40)
        assert bot.metrics.peak_in_flight == 1


async def test_moderation_failure_reaches_user(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """A DashScope moderation refusal becomes one short Chinese sentence in the chat."""
    providers.script.outcome = "moderated"
    async with running_bot(simulator, **providers.settings_for("dashscope")):
        await simulator.send_text("一张不合适的图")
        replies = await simulator.wait_for_replies(2, timeout=30)
        await simulator.send_text(CAT, sender_staff_id="next")
        providers.script.outcome = "succeed"
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
    assert replies[-1].text == chat_texts.MODERATED


async def test_stop_while_connecting(s3_env: dict[str, str]) -> None:
    """stop() ends the bot inside an unanswered open-connection call, without waiting it out."""
    from imgbot.config.settings import load_settings
    from imgbot.service.bot_process import build_bot

    hung_up = asyncio.Event()
    handlers: list[asyncio.Task[Any]] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        while await reader.read(4096):  # read the request, answer nothing, until the bot hangs up
            pass
        hung_up.set()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = load_settings(metrics_port=0)
    bot = build_bot(
        settings, client_id="x", client_secret="y", openapi_endpoint=f"http://127.0.0.1:{port}"
    )
    task = asyncio.create_task(bot.run())
    await wait_until(lambda: len(handlers) == 1)  # the bot is inside the open-connection call
    bot.stop()
    # Without the cancel, the open call would time out and the stream would try again, forever.
    await asyncio.wait_for(task, 30)
    await asyncio.wait_for(hung_up.wait(), 30)  # the bot hung up on the unanswered call
    assert len(handlers) == 1  # ended inside its first attempt: no timeout, no retry
    await asyncio.gather(*handlers)
    server.close()
    await server.wait_closed()
    await bot.aclose()


async def test_group_sender_without_staff_id_gets_no_bare_mention(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A group sender DingTalk gave no staff id is not @-mentioned with an empty name."""
    async with running_bot(simulator) as bot:
        message = await simulator.send_text("warm up", group=True, sender_staff_id="s1")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
        anonymous = {k: v for k, v in message.items() if k != "senderStaffId"}
        await simulator.send_message({**anonymous, "msgId": "no-staff-id"})
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 2}, timeout=30)
    replies = simulator.replies[2:]  # the progress and image replies to the second message
    assert len(replies) == 2 and all(r.at_user_ids == () for r in replies)
    assert not any(line.strip() == "@" for r in replies for line in r.text.splitlines())
    assert not any(r.text.startswith("@") for r in replies)


async def test_refusals_are_rate_limited(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Refusals count against the sender's rate; past it the sender is told once, then silence."""
    async with running_bot(simulator, user_requests_per_minute=2) as bot:
        for _ in range(5):
            await simulator.send_text("帮助")
        await wait_until(lambda: sum(bot.metrics.outcomes().values()) == 5)
        await simulator.send_text("帮助", sender_staff_id="someone-else")
        await wait_until(lambda: bot.metrics.outcomes().get("help") == 3)
    assert bot.metrics.outcomes() == {"help": 3, "rate_limited": 1, "rate_limited_quiet": 2}
    texts = [r.text for r in simulator.replies]
    assert texts.count(chat_texts.RATE_LIMITED) == 1 and len(texts) == 4


async def test_native_image_reply(simulator: DingTalkSimulator, s3_env: dict[str, str]) -> None:
    """REPLY_STYLE=image: DingTalk's own image message via the robot API, then a short Markdown."""
    async with running_bot(simulator, reply_style="image") as bot:
        await simulator.send_text(CAT)
        await simulator.send_text("画一座山", group=True, sender_staff_id="staff9")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 2}, timeout=30)
    images = [r for r in simulator.replies if r.msgtype == "image"]
    assert {r.channel for r in images} == {"robot_o2o", "robot_group"}
    for image in images:
        status, content_type = await asyncio.to_thread(http_get, image.text)
        # the preview, or the original PNG when that is lighter (the placeholder's often is)
        assert status == 200 and content_type in ("image/jpeg", "image/png")
    captions = [r for r in simulator.replies if r.msgtype == "markdown"]
    assert len(captions) == 2 and not image_replies(simulator)
    for caption in captions:
        assert LINK_RE.search(caption.text) and "![" not in caption.text
    group = next(c for c in captions if "画一座山" in c.text)
    assert "@staff9" in group.text and group.at_user_ids == ("staff9",)


async def test_refused_native_image_falls_back_to_markdown(
    simulator: DingTalkSimulator, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """When DingTalk refuses the image message, the Markdown reply arrives and why is logged."""
    simulator.refuse_image_messages = True
    async with running_bot(simulator, reply_style="image") as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert len(image_replies(simulator)) == 1
    assert not [r for r in simulator.replies if r.msgtype == "image"]
    assert "native image refused" in caplog.text and "photoURL" in caplog.text


async def test_unconfirmed_native_image_is_not_sent_again(
    simulator: DingTalkSimulator, s3_env: dict[str, str], no_retry_waits: list[float]
) -> None:
    """An image message delivered but answered too late is not resent, nor replaced by Markdown."""
    simulator.slow_robot_answers_s = 2.0
    async with running_bot(simulator, reply_style="image", reply_timeout_seconds=0.5) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert len([r for r in simulator.replies if r.msgtype == "image"]) == 1
    assert not image_replies(simulator)  # no Markdown picture on top of the native one
    captions = [r for r in simulator.replies if r.msgtype == "markdown"]
    assert len(captions) == 1 and LINK_RE.search(captions[0].text)


async def test_session_webhook_elsewhere_is_not_called(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A payload whose sessionWebhook names another host gets its replies via the robot API."""
    from aiohttp import web

    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.json_response({"errcode": 0})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    elsewhere = f"http://127.0.0.1:{runner.addresses[0][1]}/robot/sendBySession?session=x"
    try:
        async with running_bot(simulator) as bot:
            message = await simulator.send_text("warm up")
            await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
            await simulator.send_message({**message, "msgId": "m-2", "sessionWebhook": elsewhere})
            await wait_until(lambda: bot.metrics.outcomes() == {"image": 2}, timeout=30)
    finally:
        await runner.cleanup()
    assert seen == []
    assert [r.channel for r in simulator.replies[2:]] == ["robot_o2o", "robot_o2o"]


class _FailingGenerator(PlaceholderGenerator):
    """Draws nothing: every request fails as a provider outage would."""

    async def generate(self, prompt: str, size: Any) -> Any:
        raise GeneratorError("provider down", reason="down")


async def test_an_error_reply_that_cannot_be_sent_counts_as_failed(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A failed drawing whose error sentence cannot be delivered (the webhook refuses, the robot
    API has no staff id to write to) is counted "failed", not "superseded": the fence let the
    reply through, the send itself failed."""
    simulator.webhook_script = [("hang", 0), {"errcode": 300001, "errmsg": "session 不存在"}]
    async with running_bot(simulator, _FailingGenerator()) as bot:
        await simulator.send_text(CAT, sender_staff_id="")
        await wait_until(lambda: sum(bot.metrics.outcomes().values()) == 1, timeout=30)
        assert bot.metrics.outcomes() == {"failed": 1}
    assert [r.text for r in simulator.replies] == [chat_texts.PROGRESS]


async def test_an_unparsable_webhook_costs_no_slot(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """A sessionWebhook that is no URL at all (an unclosed IPv6 "[") is not trusted: the reply
    goes through the robot API, and the one generation slot is free for the next message."""
    async with running_bot(simulator, max_concurrent_generations=1, max_queued_requests=0) as bot:
        message = await simulator.send_text("warm up")
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
        odd = {**message, "msgId": "bad-hook", "sessionWebhook": "https://[oapi.dingtalk.com/x"}
        await simulator.send_message(odd)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 2}, timeout=30)
        await simulator.send_text(CAT)
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 3}, timeout=30)
    # warm-up (progress, picture), then the odd message's two through the robot API
    assert [r.channel for r in simulator.replies[2:4]] == ["robot_o2o", "robot_o2o"]


async def test_a_hanging_progress_sentence_does_not_cost_the_lease(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """While the progress sentence hangs, the claimed job's lease runs unrenewed: the sentence
    gets a third of the lease, then the job starts and heart-beats, so no other claim draws it."""
    simulator.webhook_script = [("hang", 6)]
    async with running_bot(
        simulator, request_reclaim_seconds=3, reply_timeout_seconds=8, reply_attempts=1
    ) as bot:
        await simulator.send_text(CAT)
        await wait_until(lambda: len(image_replies(simulator)) == 1, timeout=30)
        await wait_until(lambda: sum(bot.metrics.outcomes().values()) >= 1, timeout=30)
    assert bot.metrics.outcomes() == {"image": 1}


async def test_a_count_in_another_script_is_acked_and_answered(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """「画٤张猫」 (an Arabic-Indic digit) is ACKed and drawn once: no redelivery, no silence."""
    async with running_bot(simulator) as bot:
        sent = await simulator.send_text("画٤张猫")
        assert (await simulator.wait_for_ack(str(sent["msgId"])))["code"] == 200
        await wait_until(lambda: bot.metrics.outcomes() == {"image": 1}, timeout=30)
    assert len(image_replies(simulator)) == 1
    assert simulator.redeliveries == 0


async def test_a_message_that_cannot_be_read_is_acked_and_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug reading a message still ACKs it, logs one English line and hands on a request
    that is answered with the failure sentence."""
    from dingtalk_stream import CallbackMessage

    from imgbot.bot import _Handler
    from imgbot.chat.refusals import refusal
    from imgbot.observe import NoObserver

    def broken(data: object) -> Any:
        raise ValueError("substring not found")

    handed: list[Any] = []
    handler = _Handler(handed.append, NoObserver(), parse=broken)
    data = {"msgId": "m1", "msgtype": "text", "text": {"content": "画4张"}, "senderId": "u"}
    message = CallbackMessage.from_dict({"headers": {}, "data": json.dumps(data)})
    status, _ = await handler.process(message)
    assert status == 200
    [request] = handed
    refused = refusal(request, can_edit=True, max_prompt_chars=1000, retention_days=7)
    assert refused is not None and refused.text == chat_texts.UNREADABLE
    assert refused.outcome == "failed"
    [line] = [r.getMessage() for r in caplog.records if r.name == "imgbot.bot"]
    assert line.startswith("could not read a bot message (ValueError at")
    bad = CallbackMessage.from_dict({"headers": {}, "data": json.dumps({"text": 1})})
    assert (await handler.process(bad))[0] == 200 and len(handed) == 1
