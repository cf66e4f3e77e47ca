"""What imgbot's preview settings give for the benchmark's picture: size, bytes and fidelity.

Runs imgbot's own ``prepare`` (pure, no network) with PREVIEW_MAX_SIDE and PREVIEW_QUALITY
variants, so a failing preview target can be traced to a setting.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

from PIL import Image

from bench.ssim import psnr_rgb, ssim_luma
from imgbot.config import Settings
from imgbot.imaging import prepare
from imgbot.pipeline import limits_from

VARIANTS = ((1280, 92), (1280, 80), (1280, 90), (1280, 95), (768, 80), (640, 80))


@dataclass(frozen=True, slots=True)
class PreviewCheck:
    """One preview setting and what it produced."""

    max_side: int
    quality: int
    side: int
    share: float
    ssim: float
    psnr: float

    def passes(self) -> bool:
        """Both preview targets: at most 15% of the PNG's bytes and SSIM at least 0.95."""
        return self.share <= 0.15 and self.ssim >= 0.95


def check(png: bytes, max_side: int, quality: int) -> PreviewCheck:
    """Prepare ``png`` with one preview setting and measure the preview."""
    defaults = limits_from(Settings.model_construct())  # the configured defaults, no environment
    limits = replace(defaults, preview_max_side=max_side, preview_quality=quality)
    preview = prepare(png, limits).preview
    shown = Image.open(io.BytesIO(preview.data)).convert("RGB")
    reference = Image.open(io.BytesIO(png)).convert("RGB")
    if reference.size != shown.size:
        reference = reference.resize(shown.size, Image.Resampling.LANCZOS)
    return PreviewCheck(
        max_side,
        quality,
        max(shown.size),
        len(preview.data) / len(png),
        ssim_luma(reference, shown),
        psnr_rgb(reference, shown),
    )


def table(png: bytes) -> str:
    """A Markdown table of every variant (the first is imgbot's default)."""
    lines = [
        "| PREVIEW_MAX_SIDE / PREVIEW_QUALITY | preview side (px) | share of the PNG's bytes "
        "| SSIM luma | PSNR (dB) | both preview targets |",
        "|" + " --- |" * 6,
    ]
    for max_side, quality in VARIANTS:
        c = check(png, max_side, quality)
        default = " (default)" if (max_side, quality) == VARIANTS[0] else ""
        lines.append(
            f"| {max_side} / {quality}{default} | {c.side} | {c.share:.1%} | "
            f"{c.ssim:.4f} | {c.psnr:.2f} | {'yes' if c.passes() else 'no'} |"
        )
    return "\n".join(lines)
