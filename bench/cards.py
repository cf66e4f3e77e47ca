"""DingTalk API calls per answered request, and time to the first visible feedback, per REPLY_STYLE.

``.venv/bin/python -m bench.cards`` from the checkout's root (under a minute; it needs MinIO,
which `make install` provides). For each style (markdown, image, card) a fresh simulator and the
bot in this process (placeholder generator, SQLite store) answer ``--messages`` requests one after
another, each from its own user, after one warm-up request (the access token is then cached: one
token call per process every two hours, not counted). For each request it counts the calls the
simulator received (session webhook, robot sends, card API, token) from the push until the answer
is complete, the time from the push to the first thing the user sees (the progress sentence, or
the card saying 生成中…) and to the whole answer, each stamped on the simulator's thread when it
records it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/cards.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import Minio
from bench.report import machine
from imgbot.config.settings import Settings
from imgbot.service.bot_process import build_bot
from imgbot.simulator import DingTalkSimulator
from tests.minio_server import minio_binary

BUCKET = "imgbot-bench-cards"
PROMPT = "帮我画一只可爱的小猫"
STYLES = ("markdown", "image", "card")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.cards", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=15, help="requests per style")
    return parser


def main() -> int:
    """Measure each style and print one Markdown table of medians."""
    args = _parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="imgbot-bench-cards-") as folder:
        rows = asyncio.run(_bench(Path(folder), args.messages))
    print(f"machine: {machine()}")
    print(f"{args.messages} requests per style, one at a time, placeholder generator\n")
    print(
        "| REPLY_STYLE | DingTalk API calls per answered request "
        "| first feedback, ms (median) | whole answer, ms (median) |"
    )
    print("| --- | ---: | ---: | ---: |")
    for style, calls, feedback, answer in rows:
        print(f"| {style} | {calls} | {feedback:.0f} | {answer:.0f} |")
    return 0


def _calls(sim: DingTalkSimulator) -> int:
    """Every call the simulator answered for the bot's replies (a webhook POST, a recorded robot
    send, a card call, a token call)."""
    robot = sum(1 for reply in sim.replies if reply.channel != "webhook")
    return sim.webhook_attempts + robot + len(sim.card_calls) + sim.token_calls


def _finished_cards(sim: DingTalkSimulator) -> int:
    return sum(1 for card in list(sim.cards.values()) if card.params.get("status") == "done")


def _done(sim: DingTalkSimulator, style: str, replies_before: int) -> Callable[[], bool]:
    """Whether the request sent after ``replies_before`` replies has its whole answer."""
    if style == "card":
        finished = _finished_cards(sim)
        return lambda: _finished_cards(sim) > finished
    wanted = {"markdown": 2, "image": 3}[style]  # progress, (image,) Markdown
    return lambda: len(sim.replies) >= replies_before + wanted


async def _one(sim: DingTalkSimulator, style: str, user: str) -> tuple[int, float, float]:
    """One request: the calls it cost, the seconds to its first visible feedback and to its
    whole answer."""
    calls, replies, cards = _calls(sim), len(sim.replies), len(sim.cards)
    done = _done(sim, style, replies)
    seen: list[float] = []
    finished: list[float] = []

    def feedback() -> bool:
        if not seen and (len(sim.replies) > replies or len(sim.cards) > cards):
            seen.append(time.perf_counter())
        return bool(seen)

    def answered() -> bool:
        if not finished and done():
            finished.append(time.perf_counter())
        return bool(finished)

    started = time.perf_counter()
    await sim.send_text(PROMPT, sender_staff_id=user)
    await sim.wait_until(feedback, timeout=30)
    await sim.wait_until(answered, timeout=30)
    return _calls(sim) - calls, seen[0] - started, finished[0] - started


async def _style(settings: Settings, style: str, messages: int) -> tuple[int, float, float]:
    async with DingTalkSimulator() as sim:
        bot = build_bot(
            settings.model_copy(update={"reply_style": style, "card_template_id": "bench.schema"}),
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            openapi_endpoint=sim.base_url,
        )
        task = asyncio.create_task(bot.run())
        try:
            await sim.wait_connected(timeout=30)
            await _one(sim, style, "warm-up")
            results = [await _one(sim, style, f"user{n}") for n in range(messages)]
        finally:
            bot.stop()
            await asyncio.wait_for(task, 15)
            await bot.aclose()
    calls = {c for c, _, _ in results}
    if len(calls) != 1:
        raise RuntimeError(f"{style}: calls per request varied: {sorted(calls)}")
    feedback = statistics.median(f for _, f, _ in results) * 1000
    return calls.pop(), feedback, statistics.median(a for _, _, a in results) * 1000


async def _bench(workdir: Path, messages: int) -> list[tuple[str, int, float, float]]:
    minio = Minio(minio_binary(), workdir)
    try:
        minio.start()
        settings = await minio.bucket(
            BUCKET, state_url=f"sqlite:///{workdir}/state.db", user_requests_per_minute=1000
        )
        return [(style, *await _style(settings, style, messages)) for style in STYLES]
    finally:
        minio.stop()


if __name__ == "__main__":
    raise SystemExit(main())
