"""Wiring of the running bot: builds it from settings and serves it until a signal stops it."""

from __future__ import annotations

import asyncio
import signal

from imgbot.bot import Bot
from imgbot.config import Settings
from imgbot.conversation import Limits, Responder
from imgbot.errors import ConfigError
from imgbot.generators import build_generator
from imgbot.metrics import Metrics
from imgbot.pipeline import Pipeline
from imgbot.reply import ReplySender


def build_bot(
    settings: Settings, *, client_id: str, client_secret: str, openapi_endpoint: str | None
) -> Bot:
    """Wire pipeline, reply sender, responder and metrics from settings."""
    metrics = Metrics()
    pipeline = Pipeline.from_settings(settings, build_generator(settings, metrics))
    pipeline.observer = metrics
    sender = ReplySender(
        client_id=client_id,
        client_secret=client_secret,
        openapi_endpoint=openapi_endpoint,
        timeout=settings.reply_timeout_seconds,
        attempts=settings.reply_attempts,
        observer=metrics,
    )
    limits = Limits(
        max_prompt_chars=settings.max_prompt_chars,
        max_concurrent=settings.max_concurrent_generations,
        max_queued=settings.max_queued_requests,
        requests_per_minute=settings.user_requests_per_minute,
        request_timeout=settings.request_timeout_seconds,
        retention_days=settings.image_retention_days,
    )
    return Bot(
        settings,
        Responder(pipeline, sender, limits, metrics),
        client_id=client_id,
        client_secret=client_secret,
        openapi_endpoint=openapi_endpoint,
        metrics=metrics,
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
        await bot.responder.sender.aclose()
        await bot.responder.pipeline.aclose()


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
        openapi_endpoint=settings.dingtalk_openapi_endpoint,
    )
    asyncio.run(serve(bot))
    return 0
