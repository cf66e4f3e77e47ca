"""The picture both designs publish, and the generator stand-in that returns it instantly."""

from __future__ import annotations

from pathlib import Path

from imgbot.errors import EditUnavailable
from imgbot.models import EditSpec, GeneratedImage, Size
from tests import images as test_images


def photo_png(size: int = 1024, seed: int = 1) -> bytes:
    """A photo-like PNG: smooth colour fields, soft edges and sensor-like noise (about 1.3 MB).

    The same picture the tests use, so the benchmark measures what the tests check.
    """
    return test_images.photo_png(size, seed)


class FixedImage:
    """A ``Generator`` that answers every prompt with the same bytes, read once from a file.

    Generation is excluded from the benchmark: both designs get the picture at once, so what is
    measured is what each design does with it.
    """

    name = "bench-fixed"
    model = ""
    edit_model = ""
    edits: EditSpec | None = None

    def __init__(self, path: Path, max_n: int = 1) -> None:
        self._data = path.read_bytes()
        self.max_n = max_n
        """1: several pictures are several calls; more: like a provider's ``n``."""

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Return the fixed picture whatever the prompt and size."""
        del prompt, size
        return GeneratedImage(data=self._data)

    async def generate_many(self, prompt: str, size: Size, n: int) -> list[GeneratedImage]:
        """``n`` copies of the fixed picture, each its own bytes (as a provider's answer)."""
        return [GeneratedImage(data=bytes(bytearray(self._data))) for _ in range(n)]

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """The benchmark's stand-in draws only."""
        raise EditUnavailable("bench-fixed cannot edit", reason="editing not available")

    async def aclose(self) -> None:
        """Nothing to release."""
