"""``imgbot simulate``: the built-in DingTalk simulator and the real bot code path against it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from imgbot.config.settings import Settings
from imgbot.generators import build_generator
from imgbot.service.bot_process import build_bot, serve


def run_simulated(settings: Settings, on_ready: Callable[[str], None]) -> int:
    """Start the simulator, point the bot at it, give ``on_ready`` the chat page's address, serve.

    Settings are checked (the generator's keys too) before anything starts or ``on_ready`` is
    called.
    """
    asyncio.run(_simulate(settings, on_ready))
    return 0


async def _simulate(settings: Settings, on_ready: Callable[[str], None]) -> None:
    from imgbot.simulator import DingTalkSimulator

    build_generator(settings)  # IMAGE_GENERATOR's keys are checked before the simulator starts
    client_id, client_secret = "imgbot-simulated", secrets.token_urlsafe(16)
    simulator = DingTalkSimulator(
        client_id=client_id,
        client_secret=client_secret,
        host=settings.simulator_host,
        port=settings.simulator_port,
    )
    await simulator.start()
    try:
        bot = build_bot(
            settings,
            client_id=client_id,
            client_secret=client_secret,
            openapi_endpoint=simulator.base_url,
            oapi_endpoint=simulator.oapi_url,
        )
        on_ready(simulator.chat_url)
        await serve(bot)
    finally:
        await simulator.stop()
