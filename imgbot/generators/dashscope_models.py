"""DashScope text-to-image model families: where each is called, how, and the sizes it takes.

From Model Studio's API references (late 2026):

- ``wan2.6-t2i``: ``POST /api/v1/services/aigc/multimodal-generation/generation``, answered at
  once; ``input.messages`` with one text; ``parameters.size`` "W*H" with 1280*1280 to 1440*1440
  pixels in all and a ratio within 1:4 to 4:1 (the recommended 1280*1280, 1472*1104, 1104*1472,
  1696*960 and 960*1696 are chosen from); ``n`` 1-4 (default 4); ``negative_prompt``,
  ``prompt_extend`` and ``watermark`` in ``parameters``.
- ``wan2.5-t2i-preview``: the task API (``/api/v1/services/aigc/text2image/image-synthesis``,
  polled), ``input.prompt`` and ``input.negative_prompt``; sizes as wan2.6; ``n`` 1-4 (default 4).
- ``wan2.2-t2i-flash`` / ``-plus``, ``wan2.1-t2i-*``, ``wanx2.*``: the task API; each side
  512-1440 px; ``n`` 1-4.
- ``qwen-image``, ``qwen-image-plus``, ``qwen-image-max`` (and their dated snapshots): the
  synchronous endpoint, ``input.messages``; only 1664*928, 1472*1104, 1328*1328, 1104*1472 and
  928*1664; ``n`` 1.
- ``qwen-image-2.0`` and later (``-pro``, 2.1, 3.0): synchronous; 512*512 to 2048*2048 pixels in
  all; ``n`` 1-6.

A name of none of these families is called the wan2.2 way (the task API, sides 512-1440), as
imgbot called every model before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imgbot.generators.sizes import SizeRule
from imgbot.models import Size

TASK_PATH = "/api/v1/services/aigc/text2image/image-synthesis"
SYNC_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
NEGATIVE_PROMPT_CHARS = 500
"""The longest ``negative_prompt`` every family takes."""


@dataclass(frozen=True, slots=True)
class Family:
    """How one family of text-to-image models is called."""

    name: str
    task: bool
    """True: a task on ``TASK_PATH``, polled (``input.prompt``); False: one synchronous call on
    ``SYNC_PATH`` (``input.messages``)."""
    sizes: SizeRule
    most: int
    """Pictures one call may ask for (``parameters.n``)."""


_WAN_RECOMMENDED = tuple(
    Size(w, h) for w, h in ((1280, 1280), (1472, 1104), (1104, 1472), (1696, 960), (960, 1696))
)
_WAN_AREA = SizeRule(
    sizes=_WAN_RECOMMENDED, sides=(1, 4096), area=(1280 * 1280, 1440 * 1440), max_ratio=4.0
)
WAN26 = Family("wan2.6", task=False, sizes=_WAN_AREA, most=4)
WAN25 = Family("wan2.5", task=True, sizes=_WAN_AREA, most=4)
WAN22 = Family("wan2.2", task=True, sizes=SizeRule(sides=(512, 1440)), most=4)
QWEN_FIXED = Family(
    "qwen-image",
    task=False,
    sizes=SizeRule(
        sizes=tuple(
            Size(w, h)
            for w, h in ((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664))
        )
    ),
    most=1,
)
QWEN_FLEX = Family(
    "qwen-image-2",
    task=False,
    sizes=SizeRule(sides=(1, 4096), area=(512 * 512, 2048 * 2048)),
    most=6,
)
_NEWER_QWEN = re.compile(r"^qwen-image-[2-9]")


def family_of(model: str) -> Family:
    """The family of the text-to-image model ``model`` (DASHSCOPE_MODEL)."""
    if model.startswith("wan2.6"):
        return WAN26
    if model.startswith("wan2.5"):
        return WAN25
    if _NEWER_QWEN.match(model):
        return QWEN_FLEX
    if model.startswith("qwen-image"):
        return QWEN_FIXED
    return WAN22
