"""``imgbot simulate``: the built-in DingTalk simulator and the real bot code path against it."""

from __future__ import annotations

import asyncio
import logging
import secrets

from imgbot.config.settings import Settings
from imgbot.service.bot_process import build_bot, serve

log = logging.getLogger(__name__)


def run_simulated(settings: Settings) -> int:
    """Start the simulator, point the bot at it, print the chat page's address, serve."""
    asyncio.run(_simulate(settings))
    return 0


async def _simulate(settings: Settings) -> None:
    from imgbot.simulator import DingTalkSimulator

    client_id, client_secret = "imgbot-simulated", secrets.token_urlsafe(16)
    simulator = DingTalkSimulator(
        client_id=client_id,
        client_secret=client_secret,
        host=settings.simulator_host,
        port=settings.simulator_port,
    )
    await simulator.start()
    bot = build_bot(
        settings,
        client_id=client_id,
        client_secret=client_secret,
        openapi_endpoint=simulator.base_url,
    )
    print(f"imgbot simulator chat page: {simulator.chat_url}", flush=True)
    print("type a message there, e.g. 帮我画一只可爱的小猫 — Ctrl+C to stop", flush=True)
    try:
        await serve(bot)
    finally:
        await simulator.stop()
