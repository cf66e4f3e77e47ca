"""What each provider's documentation says a drawing request may hold, for the stand-ins.

Written from the providers' API references, independently of imgbot's own tables, so a size or an
option imgbot gets wrong is refused here as the provider would refuse it. Each check returns what
is wrong (the provider's own kind of message), or "" when nothing is.

DashScope (Model Studio, late 2026): wan2.6-t2i and wan2.5-t2i-preview take 1280*1280 to
1440*1440 pixels in all within 1:4 to 4:1 (and the recommended 1696*960, 960*1696, 1472*1104,
1104*1472); wan2.2 / wan2.1 / wanx2.x take 512-1440 px a side; qwen-image, -plus and -max only
1664*928, 1472*1104, 1328*1328, 1104*1472, 928*1664 with n = 1; qwen-image-2.0 and later
512*512 to 2048*2048 pixels with n 1-6; wan n 1-4. ``negative_prompt`` at most 500 characters.

OpenAI: GPT image models take size 1024x1024, 1536x1024, 1024x1536 or auto (gpt-image-2 also any
size with edges multiples of 16, the longest at most 3840, a ratio up to 3:1 and 655,360 to
8,294,400 pixels); quality low/medium/high/auto; output_format png/jpeg/webp;
output_compression 0-100 with jpeg or webp only; no response_format. dall-e-2 (retired by OpenAI,
still served by some compatible servers) takes 256x256, 512x512 or 1024x1024 and none of the GPT
image options.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_WAN_RECOMMENDED = {(1696, 960), (960, 1696), (1472, 1104), (1104, 1472), (1280, 1280)}
_QWEN_FIXED = {(1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)}
_GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
_DALL_E_2_SIZES = {"256x256", "512x512", "1024x1024"}
_GPT_CHOICES = {
    "quality": {"low", "medium", "high", "auto"},
    "output_format": {"png", "jpeg", "webp"},
}
_GPT_ONLY = ("quality", "output_format", "output_compression", "background", "moderation")
TASK_PARAMETERS = {"size", "n", "seed", "prompt_extend", "watermark"}
SYNC_PARAMETERS = {*TASK_PARAMETERS, "negative_prompt"}


def dashscope_family(model: str) -> str:
    """wan-area, wan-sides, qwen-fixed or qwen-flex: which documented rules ``model`` follows."""
    if model.startswith(("wan2.6", "wan2.5")):
        return "wan-area"
    if re.match(r"qwen-image-[2-9]", model):
        return "qwen-flex"
    if model.startswith("qwen-image"):
        return "qwen-fixed"
    return "wan-sides"


def dashscope_problem(model: str, parameters: Any, allowed: set[str]) -> str:
    """What is wrong with a text-to-image request's ``parameters`` for ``model``, or ""."""
    if not isinstance(parameters, dict):
        return "parameters must be an object"
    return next(
        (problem for problem in _dashscope_checks(model, parameters, allowed) if problem), ""
    )


def _dashscope_checks(model: str, parameters: dict[str, Any], allowed: set[str]) -> Iterator[str]:
    unknown = sorted(set(parameters) - allowed)
    yield f"parameters.{unknown[0]} is not a parameter of this API" if unknown else ""
    family = dashscope_family(model)
    most = {"qwen-fixed": 1, "qwen-flex": 6}.get(family, 4)
    n = parameters.get("n", 1)
    ok = isinstance(n, int) and 1 <= n <= most
    yield "" if ok else f"n must be an integer from 1 to {most} for {model}"
    for flag in ("prompt_extend", "watermark"):
        ok = isinstance(parameters.get(flag, False), bool)
        yield "" if ok else f"{flag} must be true or false"
    negative = parameters.get("negative_prompt", "")
    ok = isinstance(negative, str) and len(negative) <= 500
    yield "" if ok else "negative_prompt must be a string of at most 500 characters"
    if "size" in parameters:
        yield _dashscope_size_problem(family, str(parameters["size"]))


def _dashscope_size_problem(family: str, size: str) -> str:
    match = re.fullmatch(r"(\d+)\*(\d+)", size)
    if not match:
        return f"size {size!r} must be width*height, e.g. 1024*1024"
    width, height = int(match.group(1)), int(match.group(2))
    long, short, area = max(width, height), min(width, height), width * height
    if family == "qwen-fixed":
        ok = (width, height) in _QWEN_FIXED
    elif family == "qwen-flex":
        ok = 512 * 512 <= area <= 2048 * 2048
    elif family == "wan-area":
        in_range = 1280 * 1280 <= area <= 1440 * 1440 and long <= 4 * short
        ok = in_range or (width, height) in _WAN_RECOMMENDED
    else:
        ok = short >= 512 and long <= 1440
    return "" if ok else f"The size {size} is not supported by this model."


def openai_problem(model: str, fields: dict[str, Any]) -> tuple[str, str] | None:
    """(param, message) of the first field of an images request ``model`` refuses, or None."""
    return next((refused for refused in _openai_checks(model, fields) if refused), None)


def _openai_checks(model: str, fields: dict[str, Any]) -> Iterator[tuple[str, str] | None]:
    gpt = model.startswith("gpt-image")
    if "response_format" in fields and gpt:
        yield "response_format", "Unknown parameter: 'response_format'."
    if model == "dall-e-2":
        yield from ((name, f"Unknown parameter: '{name}'.") for name in _GPT_ONLY if name in fields)
    n, most = fields.get("n", 1), 1 if model == "dall-e-3" else 10
    if not str(n).isdigit() or not 1 <= int(n) <= most:
        yield "n", f"Invalid 'n': expected an integer from 1 to {most}, but got {n!r} instead."
    size = fields.get("size")
    if size is not None and not _openai_size_ok(model, str(size)):
        shown = sorted(_GPT_SIZES if gpt else _DALL_E_2_SIZES)
        yield "size", f"Invalid value: '{size}'. Supported values are: {shown}."
    if not gpt:
        return
    for name, allowed in _GPT_CHOICES.items():
        if name in fields and str(fields[name]) not in allowed:
            yield name, f"Invalid value: '{fields[name]}'. Supported values: {sorted(allowed)}."
    if "output_compression" in fields and str(fields.get("output_format", "png")) == "png":
        message = "output_compression is only supported for jpeg and webp output formats."
        yield "output_compression", message
    if not 0 <= int(fields.get("output_compression", 100)) <= 100:
        yield "output_compression", "output_compression must be from 0 to 100."


def _openai_size_ok(model: str, size: str) -> bool:
    if model == "dall-e-2":
        return size in _DALL_E_2_SIZES
    if not model.startswith("gpt-image"):
        return True
    if size in _GPT_SIZES:
        return True
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if model != "gpt-image-2" or not match:
        return False
    width, height = int(match.group(1)), int(match.group(2))
    long, short = max(width, height), min(width, height)
    return (
        width % 16 == 0
        and height % 16 == 0
        and long <= 3840
        and long <= 3 * short
        and 655_360 <= width * height <= 8_294_400
    )
