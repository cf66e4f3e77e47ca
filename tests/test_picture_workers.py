"""Users' pictures are validated in child processes: bounded in CPU time, stopped with their
request, taking turns per user, and answering exactly what the in-process validation gives."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from imgbot.errors import ImageError
from imgbot.images.renditions import prepare_edit
from imgbot.images.strip_metadata import strip_metadata
from imgbot.images.workers import PictureWorkers
from imgbot.models import EditSpec
from tests import hostile
from tests.images import default_limits, encode, jpeg_with_gps, photo_like
from tests.polling import wait_until

SPEC = EditSpec(min_side=384, max_side=3072, max_bytes=10 * 1024 * 1024, format="JPEG")
# Room for the slow picture's scans, so that it is decoded (slowly) instead of refused.
LIMITS = replace(default_limits(), max_jpeg_scans=10_000)


@functools.cache
def slow_picture() -> bytes:
    """The attack at full size: 5000x4000 grey (20 MP), 5,000 empty scans (about 200 KB).
    Decoding it takes minutes of CPU time here and at least several seconds on any machine, so a
    one-second CPU limit always stops it, whatever the machine's speed."""
    return hostile.jpeg_repeated_empty_scans(5000, (5000, 4000))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (running, or dead but not yet reaped)."""
    return Path(f"/proc/{pid}").exists()


async def test_a_child_answers_what_prepare_edit_gives() -> None:
    """The stored original, the fitted copy and its size come back from the child exactly as an
    in-process ``prepare_edit`` makes them, and the child is gone afterwards."""
    workers = PictureWorkers(slots=1, cpu_seconds=30)
    picture = jpeg_with_gps()
    got = await workers.edit_input(picture, LIMITS, SPEC, owner="alice", wall_seconds=60)
    assert got == prepare_edit(picture, LIMITS, SPEC)
    assert workers.running == {}


async def test_a_refusal_in_the_child_keeps_its_kind() -> None:
    """A picture the child refuses raises ImageError with the same kind and message."""
    workers = PictureWorkers(slots=1, cpu_seconds=30)
    bomb = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    with pytest.raises(ImageError, match="too many pixels") as refused:
        await workers.edit_input(bomb, LIMITS, SPEC, owner="alice", wall_seconds=60)
    assert refused.value.kind == "too_many_pixels"
    many = hostile.jpeg_repeated_empty_scans(101)
    with pytest.raises(ImageError, match="more than 100 scans") as scans:
        await workers.edit_input(many, default_limits(), SPEC, owner="a", wall_seconds=60)
    assert scans.value.kind == "invalid"


async def test_a_picture_past_its_cpu_time_is_stopped_and_refused_as_too_slow() -> None:
    """A picture that needs more CPU time than PICTURE_CPU_SECONDS is stopped by the kernel and
    refused with kind too_slow; no child is left."""
    workers = PictureWorkers(slots=1, cpu_seconds=1)
    with pytest.raises(ImageError, match="more than 1 s of CPU time") as refused:
        await workers.edit_input(slow_picture(), LIMITS, SPEC, owner="mallory", wall_seconds=600)
    assert refused.value.kind == "too_slow"
    assert workers.running == {}


async def slow_picture_running() -> tuple[PictureWorkers, asyncio.Task[object], int]:
    """The slow picture being validated by a child with room to run: the workers, the request's
    task and the child's process id, once it runs."""
    started: asyncio.Queue[int] = asyncio.Queue()
    workers = PictureWorkers(slots=1, cpu_seconds=600, on_start=started.put_nowait)
    work: asyncio.Task[object] = asyncio.create_task(
        workers.edit_input(slow_picture(), LIMITS, SPEC, owner="mallory", wall_seconds=600)
    )
    async with asyncio.timeout(60):
        pid = await started.get()
    return workers, work, pid


async def test_a_picture_whose_request_gives_up_is_killed() -> None:
    """When the request stops waiting (cancelled), its child is killed and reaped at once."""
    workers, work, pid = await slow_picture_running()
    assert alive(pid)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert not alive(pid) and workers.running == {}


async def test_one_users_pictures_take_turns_behind_others() -> None:
    """With one worker, a user who sends two slow pictures before another user's small one gets
    the second one done only after the other user's: each user waits for one picture of each
    other user at most."""
    workers = PictureWorkers(slots=1, cpu_seconds=1)
    finished: list[str] = []

    async def edit(name: str, owner: str, picture: bytes) -> object:
        try:
            return await workers.edit_input(picture, LIMITS, SPEC, owner=owner, wall_seconds=600)
        finally:
            finished.append(name)

    small = encode(photo_like(160), "PNG")
    outcomes = await asyncio.gather(
        edit("slow-1", "mallory", slow_picture()),
        edit("slow-2", "mallory", slow_picture()),
        edit("small", "alice", small),
        return_exceptions=True,
    )
    assert finished == ["slow-1", "small", "slow-2"]
    assert [getattr(o, "kind", "") for o in outcomes[:2]] == ["too_slow", "too_slow"]
    assert not isinstance(outcomes[2], BaseException)


async def test_the_child_gets_no_setting_or_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture's child process runs with a clean environment: the bot's secrets and settings
    are not in it."""
    monkeypatch.setenv("S3_SECRET_KEY", "very-secret-value-123")
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", "another-secret-456")
    _, work, pid = await slow_picture_running()
    environment = read_environ(pid)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert b"secret" not in environment and b"S3_" not in environment
    assert b"PATH=" in environment


def read_environ(pid: int) -> bytes:
    """The environment process ``pid`` was started with."""
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_the_jpeg_transcoder_is_stopped_past_its_cpu_time() -> None:
    """The lossless JPEG transcoder's child limits its own CPU time too: on the slow JPEG it is
    stopped at the limit and the picture refused as too_slow."""
    with pytest.raises(ImageError, match="more than 1 s of CPU time to re-encode") as refused:
        strip_metadata(slow_picture(), "JPEG", cpu_seconds=1)
    assert refused.value.kind == "too_slow"


# A child a hostile picture took over: it reads the request, then answers as it likes.
_TAKEN_OVER = "import sys, json; sys.stdin.buffer.read()\n"
_WRITE = "sys.stdout.buffer.write(len(head).to_bytes(4, 'big') + head + body); sys.stdout.flush()\n"
OVERSIZED_ANSWER = (
    _TAKEN_OVER
    + "n = 11 * 1024 * 1024\n"  # over the cap: 4 x the upload + SPEC.max_bytes
    + "head = json.dumps({'ext': 'jpg', 'content_type': 'image/jpeg', 'original': n,"
    + " 'fitted': 10, 'width': 8, 'height': 8}).encode()\n"
    + "body = bytes(n + 10)\n"
    + _WRITE
)
NESTED_HEADER = _TAKEN_OVER + "head = b'[' * 60_000\nbody = b''\n" + _WRITE
LEFT_BEHIND = (
    _TAKEN_OVER
    + "import subprocess; p = subprocess.Popen(['sleep', '300'], stdout=subprocess.DEVNULL)\n"
    + "head = json.dumps({'error': str(p.pid), 'kind': 'invalid'}).encode()\nbody = b''\n"
    + _WRITE
)


@pytest.mark.parametrize("program", [OVERSIZED_ANSWER, NESTED_HEADER], ids=["oversized", "nested"])
async def test_a_malformed_answer_is_refused_and_frees_the_worker(program: str) -> None:
    """An answer over its size cap or nested past any header is refused at once, its child is
    killed and collected, and the one worker takes the next picture."""
    workers = PictureWorkers(slots=1, cpu_seconds=5, program=program)
    with pytest.raises(ImageError, match="malformed"):
        await workers.edit_input(b"x" * 100, LIMITS, SPEC, owner="mallory", wall_seconds=60)
    assert workers.running == {}
    honest = PictureWorkers(slots=1, cpu_seconds=5)
    picture = encode(photo_like(640, 3), "PNG")
    made = await honest.edit_input(picture, LIMITS, SPEC, owner="alice", wall_seconds=60)
    assert made.size.width == 640


async def test_a_cancelled_request_frees_its_worker_while_the_answer_is_unread() -> None:
    """A request cancelled while its child's answer waits unread in the pipe still ends, and the
    worker is free again."""
    started = asyncio.Event()
    workers = PictureWorkers(
        slots=1,
        cpu_seconds=5,
        on_start=lambda pid: started.set(),
        program=OVERSIZED_ANSWER + "import time\ntime.sleep(300)\n",
    )
    task = asyncio.create_task(
        workers.edit_input(b"x" * 100, LIMITS, SPEC, owner="mallory", wall_seconds=60)
    )
    await started.wait()
    task.cancel()
    with pytest.raises((asyncio.CancelledError, ImageError)):
        await task
    assert workers.running == {}


async def test_what_a_child_leaves_behind_is_killed_with_it() -> None:
    """A process the child started in its group (as the JPEG transcoder is) does not outlive it,
    even when the child itself ended on its own."""
    workers = PictureWorkers(slots=1, cpu_seconds=5, program=LEFT_BEHIND)
    with pytest.raises(ImageError) as refused:
        await workers.edit_input(b"x" * 100, LIMITS, SPEC, owner="mallory", wall_seconds=60)
    left = int(str(refused.value))
    await wait_until(lambda: gone(left), timeout=10, what=f"process {left} killed")


def gone(pid: int) -> bool:
    """Whether process ``pid`` is dead: no longer there, or a zombie its new parent will reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True
