"""Runs the real bot (through the dingtalk-stream SDK) against the simulator, in the test's loop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from imgbot.bucket.admin import BucketAdmin
from imgbot.config.settings import load_settings
from imgbot.service.bot_process import BotProcess, build_bot
from imgbot.setup import setup
from imgbot.simulator import DingTalkSimulator

IMAGE_RE = re.compile(r"!\[[^\]]*\]\((https?://[^)\s]+)\)")
LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\((https?://[^)\s]+)\)")


@asynccontextmanager
async def running_bot(
    simulator: DingTalkSimulator,
    generator: Any = None,
    clock: Any = None,
    *,
    set_up: bool = True,
    **overrides: Any,
) -> AsyncIterator[BotProcess]:
    """Set up the bucket (unless ``set_up`` is false: a bot user's keys may not), start the bot
    against ``simulator``, stop it cleanly afterwards; ``generator`` replaces the one settings
    name, ``clock`` the card client's."""
    overrides.setdefault("metrics_port", 0)
    overrides.setdefault("dingtalk_oapi_endpoint", simulator.oapi_url)
    settings = load_settings(dingtalk_openapi_endpoint=simulator.base_url, **overrides)
    if set_up:
        await asyncio.to_thread(setup, BucketAdmin.from_settings(settings), settings)
    bot = build_bot(
        settings,
        client_id="sim-client-id",
        client_secret="sim-client-secret",
        openapi_endpoint=simulator.base_url,
        generator=generator,
        **({"clock": clock} if clock is not None else {}),
    )
    task = asyncio.create_task(bot.run())
    try:
        await simulator.wait_connected(timeout=15)
        yield bot
    finally:
        bot.stop()
        await asyncio.wait_for(task, 15)
        await bot.aclose()


async def send_again(simulator: DingTalkSimulator, message: dict[str, Any]) -> None:
    """Deliver ``message`` again in a new frame (a redelivery) and wait for that frame's ACK.

    The bot decides about a frame before it ACKs it, so after this returns the decision is made.
    """
    frame_id = await simulator.send_message(message)
    await simulator.wait_for_ack(frame_id)


def image_replies(simulator: DingTalkSimulator) -> list[Any]:
    """Replies that carry an image."""
    return [r for r in simulator.replies if r.msgtype == "markdown" and IMAGE_RE.search(r.text)]
