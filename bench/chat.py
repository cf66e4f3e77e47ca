"""Talking to a bot through the simulator: timed requests and a many-user burst.

Each request's end is stamped on the simulator's own thread at the moment it records the image
reply (the check runs inside ``wait_until``, which re-checks on every recorded reply), so the
figure does not depend on how often the benchmark polls.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass

from imgbot.simulator import DingTalkSimulator, Reply

IMAGE_RE = re.compile(r"!\[[^\]]*\]\((https?://[^)\s]+)\)")
LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\((https?://[^)\s]+)\)")
PROMPT = "帮我画一只可爱的小猫"


@dataclass(frozen=True, slots=True)
class Answer:
    """One image reply and how long it took, message in to reply recorded."""

    seconds: float
    reply: Reply

    @property
    def image_url(self) -> str:
        """The URL the chat shows inline."""
        match = IMAGE_RE.search(self.reply.text)
        if match is None:
            raise ValueError("reply has no image")
        return match.group(1)

    @property
    def original_url(self) -> str | None:
        """The 查看原图 link, if the reply has one."""
        match = LINK_RE.search(self.reply.text)
        return match.group(1) if match else None


def _is_image(reply: Reply, msg_id: str) -> bool:
    return reply.msg_id == msg_id and reply.msgtype == "markdown" and "![" in reply.text


async def ask(sim: DingTalkSimulator, sender: str, within: float = 30.0) -> Answer:
    """Send one prompt as ``sender`` and wait for the image reply to it."""
    msg_id = f"bench-{uuid.uuid4().hex}"
    found: list[tuple[float, Reply]] = []

    def image_recorded() -> bool:
        if not found:
            for reply in reversed(sim.replies):
                if _is_image(reply, msg_id):
                    found.append((time.perf_counter(), reply))
                    break
        return bool(found)

    waiter = asyncio.create_task(sim.wait_until(image_recorded, timeout=within))
    await asyncio.sleep(0)  # the waiter is queued on the simulator's loop before the message
    started = time.perf_counter()
    await sim.send_text(PROMPT, msg_id=msg_id, sender_staff_id=sender)
    await waiter
    stamped, reply = found[0]
    return Answer(stamped - started, reply)


async def sequential(
    sim: DingTalkSimulator, count: int, sender: str = "bench-user"
) -> list[Answer]:
    """``count`` requests one after another, each sent once the previous one was answered."""
    return [await ask(sim, sender) for _ in range(count)]


async def burst(sim: DingTalkSimulator, users: int) -> tuple[float, list[Answer]]:
    """One request from each of ``users`` users at once; return the time until the last image
    reply and every answer."""
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(ask(sim, f"bench-user-{n:02d}", within=120) for n in range(users))
    )
    return time.perf_counter() - started, list(answers)
