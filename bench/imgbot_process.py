"""imgbot's bot as its own process, exactly as ``imgbot run`` builds it but with the stand-in.

Usage: ``python -m bench.imgbot_process PNG [MAX_N]`` with imgbot's settings in the environment.
The only difference from ``imgbot run`` is the generator: the fixed picture instead of
IMAGE_GENERATOR (``MAX_N`` pictures a call, 1 by default).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from bench.photo import FixedImage
from imgbot.config.settings import load_settings
from imgbot.service.bot_process import build_bot, serve


def main(png: Path, max_n: int = 1) -> None:
    """Build the bot from the environment, give it the stand-in generator, serve until SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    secret = settings.dingtalk_client_secret
    if not settings.dingtalk_client_id or secret is None:
        raise SystemExit("set DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET")
    bot = build_bot(
        settings,
        client_id=settings.dingtalk_client_id,
        client_secret=secret.get_secret_value(),
        generator=FixedImage(png, max_n),
    )
    asyncio.run(serve(bot))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
