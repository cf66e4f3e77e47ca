"""The offline generator: honest, clearly synthetic pictures drawn with Pillow from the prompt,
and edits that tint the user's picture and caption it with the instruction."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess
import textwrap
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from imgbot.generators.sizes import SizeRule
from imgbot.models import EditSpec, GeneratedImage, Size

SIZES = SizeRule(sides=(64, 4096))
"""The placeholder draws the wanted size (IMAGE_SIZE, or its area in the asked aspect)."""
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class PlaceholderGenerator:
    """Draws a gradient seeded by the prompt, labelled as a placeholder, with the prompt text."""

    name = "placeholder"
    model = ""
    edit_model = ""
    # Small enough that an edit of the largest accepted upload stays light in memory.
    edits: EditSpec | None = EditSpec(min_side=64, max_side=1536, max_bytes=16 * 1024 * 1024)
    max_n = 1
    """No provider, no ``n``: several pictures are several calls."""

    async def generate(self, prompt: str, size: Size) -> GeneratedImage:
        """Draw the picture in a worker thread, at the wanted size."""
        data = await asyncio.to_thread(draw_placeholder, prompt, SIZES.fit(size))
        return GeneratedImage(data=data)

    async def generate_many(self, prompt: str, size: Size, n: int) -> list[GeneratedImage]:
        """``n`` calls of ``generate``, one after another."""
        return [await self.generate(prompt, size) for _ in range(n)]

    async def edit(self, picture: bytes, instruction: str, size: Size) -> GeneratedImage:
        """Tint ``picture`` and caption it with ``instruction``, in a worker thread."""
        data = await asyncio.to_thread(edit_placeholder, picture, instruction)
        return GeneratedImage(data=data)

    async def aclose(self) -> None:
        """Nothing to release."""


def draw_placeholder(prompt: str, size: Size) -> bytes:
    """Return a PNG: a two-colour gradient from the prompt's hash, a frame and the prompt."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    start, end = digest[0:3], digest[3:6]
    mask = Image.linear_gradient("L").resize((size.width, size.height))
    image = Image.composite(
        Image.new("RGB", (size.width, size.height), tuple(end)),
        Image.new("RGB", (size.width, size.height), tuple(start)),
        mask,
    )
    draw = ImageDraw.Draw(image)
    margin = max(8, size.width // 32)
    draw.rectangle(
        (margin, margin, size.width - margin, size.height - margin),
        outline=(255, 255, 255),
        width=max(2, size.width // 256),
    )
    font_size = max(12, min(size.width, size.height) // 16)
    font = _font(font_size)
    label = _label("占位图 · PLACEHOLDER", "PLACEHOLDER")
    draw.text((margin * 2, margin * 2), label, fill=(255, 255, 255), font=font)
    text = _drawable(prompt)
    width_chars = max(8, (size.width - 4 * margin) // font_size)
    lines = textwrap.wrap(text, width=width_chars)[:8]
    y = margin * 2 + font_size * 2
    for line in lines:
        draw.text((margin * 2, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size * 1.4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def edit_placeholder(picture: bytes, instruction: str) -> bytes:
    """Return a PNG: ``picture`` tinted by the instruction's hash, labelled as a placeholder edit
    and captioned with the instruction on a dark band along the bottom."""
    with Image.open(io.BytesIO(picture)) as source:
        image = source.convert("RGB")
    digest = hashlib.sha256(instruction.encode("utf-8")).digest()
    image = Image.blend(image, Image.new("RGB", image.size, tuple(digest[0:3])), 0.35)
    width, height = image.size
    font_size = max(12, min(width, height) // 18)
    font = _font(font_size)
    margin = max(6, font_size // 2)
    width_chars = max(8, (width - 2 * margin) // font_size)
    lines = [_label("占位编辑 · PLACEHOLDER EDIT", "PLACEHOLDER EDIT")]
    lines += textwrap.wrap(_drawable(instruction), width=width_chars)[:4]
    band = int(font_size * 1.4) * len(lines) + 2 * margin
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, max(0, height - band), width, height), fill=(0, 0, 0))
    y = max(0, height - band) + margin
    for line in lines:
        draw.text((margin, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size * 1.4)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _label(cjk: str, ascii_only: str) -> str:
    return cjk if _cjk_font_path() else ascii_only


def _drawable(text: str) -> str:
    """``text`` as the available font can draw it (without a CJK font, non-ASCII becomes '?')."""
    return text if _cjk_font_path() or text.isascii() else text.encode("ascii", "replace").decode()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _cjk_font_path()
    if path:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


@lru_cache(maxsize=1)
def _cjk_font_path() -> str | None:
    for candidate in _CJK_FONTS:
        if Path(candidate).is_file():
            return candidate
    fc_match = shutil.which("fc-match")
    if fc_match:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", ":lang=zh"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        if found and Path(found).is_file() and "DejaVu" not in found:
            return found
    return None
