"""The old design as its own process: a plain dingtalk-stream SDK bot that saves the PNG into a
folder served by ``python -m http.server`` and replies with the file's URL.

Usage: ``python -m bench.old_design PNG FOLDER BASE_URL`` with DINGTALK_CLIENT_ID,
DINGTALK_CLIENT_SECRET and DINGTALK_OPENAPI_ENDPOINT in the environment (the SDK reads the last
one when imported). It is written the way the SDK's examples are: the handler does the work and
replies with the SDK's blocking ``reply_markdown`` through the session webhook. It shares the
stand-in generator with imgbot and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path

import dingtalk_stream
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage

from bench.photo import FixedImage
from imgbot.models import Size


class SaveAndLink(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]
    """Generate, write ``<uuid>.png`` into the served folder, reply with its URL."""

    def __init__(self, generator: FixedImage, folder: Path, base_url: str) -> None:
        super().__init__()
        self._generator = generator
        self._folder = folder
        self._base_url = base_url.rstrip("/")

    async def process(self, callback: CallbackMessage) -> tuple[int, str]:
        """Answer one chat message with the picture's URL."""
        incoming = ChatbotMessage.from_dict(callback.data)
        prompt = incoming.text.content.strip() if incoming.text else ""
        image = await self._generator.generate(prompt, Size(1024, 1024))
        name = f"{uuid.uuid4().hex}.png"
        (self._folder / name).write_bytes(image.data)
        self.reply_markdown("图片", f"#### 图片\n\n![图片]({self._base_url}/{name})", incoming)
        return AckMessage.STATUS_OK, "OK"


def main(png: Path, folder: Path, base_url: str) -> None:
    """Connect to DingTalk (the simulator) and serve until killed."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    credential = dingtalk_stream.Credential(
        os.environ["DINGTALK_CLIENT_ID"], os.environ["DINGTALK_CLIENT_SECRET"]
    )
    client = dingtalk_stream.DingTalkStreamClient(credential)
    # The SDK reports its address by routing a UDP socket towards 8.8.8.8; nothing here may
    # leave 127.0.0.1, and the simulator ignores the field.
    client.get_host_ip = lambda: ""
    client.register_callback_handler(
        ChatbotMessage.TOPIC, SaveAndLink(FixedImage(png), folder, base_url)
    )
    asyncio.run(client.start())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
