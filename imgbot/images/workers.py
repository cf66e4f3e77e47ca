"""Users' pictures are validated in child processes: a few at a time, each bounded, each fair.

Decoding a hostile picture can take minutes of CPU time in C code that cannot be interrupted, and
a decode in a thread would go on after its request gave up. So each picture gets a fresh child
process (a new Python, ``imgbot.images.child``, started for it and ended with it) that runs
``prepare_edit``:

- **Bounded.** The child limits its own CPU time (``PICTURE_CPU_SECONDS``; the kernel stops it
  past that) before it reads a byte, and it is killed, with the JPEG transcoder it may have
  started, when its request stops waiting (cancelled) or its wall-time deadline passes. Either
  way the caller gets an ``ImageError``: kind ``too_slow`` for time.
- **Few at a time.** At most ``PICTURE_WORKERS`` children run at once (each holds a full decode
  of the picture); the memory a child used is returned to the system when it ends.
- **Fair.** One owner's (user's) pictures take turns before they queue for a worker, so among the
  pictures waiting for a worker there is at most one of each user. (Which requests run at all is
  the job worker's order: one user may hold several of its slots, each waiting its turn here.)
- **Contained, within limits.** The child gets no setting and no credential in its environment
  and only its standard streams, and its answer is read as a length-prefixed JSON header and raw
  bytes, never unpickled, bounded in size and checked like any picture. It runs as the bot's own
  user, though: a child that a hostile file took over could read what that user can read, so
  the decoders themselves (Pillow, libjpeg-turbo, libpng, libwebp) stay the trust boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import PIL

import imgbot
from imgbot.errors import ImageError
from imgbot.images.child import HEADER_BYTES, header_frame, header_length, parse_header
from imgbot.images.renditions import EditInput, ImageLimits
from imgbot.models import EditSpec, Rendition, Size

log = logging.getLogger(__name__)

# Started without site (-S: a quicker start), given the folders of imgbot and Pillow.
_BOOT = "import sys; sys.path[:0] = sys.argv[2:]; from imgbot.images.child import serve; serve()"
_KINDS = frozenset({"empty", "too_large", "too_many_pixels", "invalid", "too_slow"})
_RENDITIONS = frozenset({("jpg", "image/jpeg"), ("png", "image/png"), ("webp", "image/webp")})
_MAX_MESSAGE = 300
_PIECE = 1 << 20
_REAP_SECONDS = 5.0
"""How long the rest of a killed child's answer is read (its writers are dead: a pipe's worth)."""


@dataclass
class _Turns:
    """One owner's pictures: a lock they take in turn, and how many hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class PictureWorkers:
    """Runs ``prepare_edit`` for users' pictures in child processes (see the module docstring)."""

    def __init__(
        self,
        *,
        slots: int,
        cpu_seconds: int,
        on_start: Callable[[int], object] | None = None,
        program: str = _BOOT,
    ) -> None:
        self.cpu_seconds = cpu_seconds
        self._program = program
        """The Python code a child runs (tests give one that a hostile picture took over)."""
        self._on_start = on_start
        """Called with each child's process id once it runs."""
        self._slots = asyncio.Semaphore(slots)
        self._turns: dict[str, _Turns] = {}
        self.running: dict[int, str] = {}
        """Process id -> owner of each child running now."""

    async def edit_input(
        self, data: bytes, limits: ImageLimits, spec: EditSpec, *, owner: str, wall_seconds: float
    ) -> EditInput:
        """``prepare_edit(data, limits, spec)``, done in a child within ``cpu_seconds`` of CPU
        time and ``wall_seconds`` from its start; ``ImageError`` for a refused picture."""
        header = {"limits": asdict(limits), "spec": asdict(spec), "bytes": len(data)}
        cap = 4 * len(data) + spec.max_bytes  # a transcode may grow a little
        async with self._turn(owner), self._slots:
            return await self._run(header_frame(header), data, owner, wall_seconds, cap)

    @contextlib.asynccontextmanager
    async def _turn(self, owner: str) -> AsyncIterator[None]:
        turns = self._turns.setdefault(owner, _Turns())
        turns.waiting += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.waiting -= 1
            if turns.waiting == 0:
                del self._turns[owner]

    async def _run(
        self, header: bytes, data: bytes, owner: str, wall_seconds: float, cap: int
    ) -> EditInput:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            "-c",
            self._program,
            str(self.cpu_seconds),
            *_child_path(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,  # its own process group: killed with its transcoder
        )
        self.running[process.pid] = owner
        if self._on_start is not None:
            self._on_start(process.pid)
        try:
            async with asyncio.timeout(wall_seconds):
                answer = await _exchange(process, header, data, cap)
                code = await process.wait()
        except TimeoutError:
            raise ImageError(
                f"the picture was not processed within {wall_seconds:g} s", kind="too_slow"
            ) from None
        finally:
            await _reap(process)
            del self.running[process.pid]
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            log.warning("stopped a picture worker after %d s of CPU time", self.cpu_seconds)
            raise ImageError(
                f"the picture took more than {self.cpu_seconds} s of CPU time", kind="too_slow"
            )
        if code != 0:
            raise ImageError(f"the picture could not be processed (worker exit code {code})")
        if isinstance(answer, ImageError):
            raise answer
        return answer


async def _exchange(
    process: asyncio.subprocess.Process, header: bytes, data: bytes, cap: int
) -> EditInput | ImageError:
    """Send the request (the child reads all of it before it answers), then read the answer:
    the made picture, or an ``ImageError`` (the child's refusal, or an answer out of form; the
    caller looks at the child's exit first)."""
    assert process.stdin is not None  # noqa: S101 (PIPE above)
    assert process.stdout is not None  # noqa: S101
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may die reading
        process.stdin.write(header)
        for start in range(0, len(data), _PIECE):  # a piece at a time: no copy of the whole
            process.stdin.write(data[start : start + _PIECE])
            await process.stdin.drain()
        process.stdin.close()
    try:
        length = header_length(await process.stdout.readexactly(HEADER_BYTES))
        fields = parse_header(await process.stdout.readexactly(length))
        if "error" in fields:
            kind = fields.get("kind")
            text = str(fields["error"])[:_MAX_MESSAGE]
            message = "".join(c if c.isprintable() else "?" for c in text)
            return ImageError(message, kind=kind if kind in _KINDS else "invalid")
        ext, content_type = fields["ext"], fields["content_type"]
        original, fitted = fields["original"], fields["fitted"]
        width, height = fields["width"], fields["height"]
        if (ext, content_type) not in _RENDITIONS:
            raise ValueError("not a rendition we store")
        if not (
            isinstance(original, int)
            and isinstance(fitted, int)
            and isinstance(width, int)
            and isinstance(height, int)
            and min(original, fitted, width, height) > 0
            and original + fitted <= cap
        ):
            raise ValueError("bad sizes")
        rendition = Rendition(
            await process.stdout.readexactly(original), str(ext), str(content_type)
        )
        made = EditInput(rendition, await process.stdout.readexactly(fitted), Size(width, height))
        if await process.stdout.read(1):
            raise ValueError("bytes after the answer")
    except asyncio.IncompleteReadError:  # it ended early: its exit says why
        return ImageError("the picture worker gave no answer or a malformed one")
    except (ValueError, KeyError, TypeError):
        # It may still be writing: stop it now rather than wait for it to end.
        raise ImageError("the picture worker gave a malformed answer") from None
    return made


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Kill the child's process group (its transcoder too, even when the child itself has ended)
    and collect the child. What is left of its answer is read first: ``wait`` returns only once
    the pipe has closed, and a pipe whose reader stopped reading never does."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    assert process.stdout is not None  # noqa: S101 (PIPE)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_REAP_SECONDS):
            while await process.stdout.read(_PIECE):
                pass
    await process.wait()


def _child_env() -> dict[str, str]:
    """What starting Python needs, and no setting or credential of the bot. Large allocations
    are mapped and unmapped one by one, so memory freed between stages is given back at once."""
    env = {key: os.environ[key] for key in ("PATH", "LD_LIBRARY_PATH") if key in os.environ}
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    return env


@functools.cache
def _child_path() -> tuple[str, ...]:
    """The folders holding this ``imgbot`` package and Pillow: the child imports the same code."""
    return tuple(
        dict.fromkeys(str(Path(m.__file__ or "").resolve().parents[1]) for m in (imgbot, PIL))
    )
