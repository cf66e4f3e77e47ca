"""Image fidelity with Pillow alone: SSIM (7x7 uniform windows, as scikit-image's default) and PSNR.

SSIM follows Wang et al. (2004) with K1=0.01, K2=0.03, L=255 and the sample covariance, averaged
over every window that fits inside the image; scikit-image's ``structural_similarity`` with its
defaults computes the same. Window sums are built from shifted crops of float ("F") images, so no
numpy is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageChops, ImageMath

WINDOW = 7
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _math(expression: Callable[[dict[str, Any]], Any], **images: Image.Image) -> Image.Image:
    result: Image.Image = ImageMath.lambda_eval(expression, **images)
    return result


def _window_mean(image: Image.Image, size: int = WINDOW) -> Image.Image:
    """Mean over every ``size``x``size`` window that fits ("valid" positions)."""
    width, height = image.size
    out_w, out_h = width - size + 1, height - size + 1
    rows = image.crop((0, 0, out_w, height))
    for dx in range(1, size):
        rows = _math(lambda a: a["s"] + a["p"], s=rows, p=image.crop((dx, 0, dx + out_w, height)))
    total = rows.crop((0, 0, out_w, out_h))
    for dy in range(1, size):
        total = _math(lambda a: a["s"] + a["p"], s=total, p=rows.crop((0, dy, out_w, dy + out_h)))
    count = float(size * size)
    return _math(lambda a: a["s"] / count, s=total)


def ssim_band(x: Image.Image, y: Image.Image) -> float:
    """SSIM of two single-band images of the same size."""
    x, y = x.convert("F"), y.convert("F")
    mx, my = _window_mean(x), _window_mean(y)
    mxx = _window_mean(_math(lambda a: a["x"] * a["x"], x=x))
    myy = _window_mean(_math(lambda a: a["y"] * a["y"], y=y))
    mxy = _window_mean(_math(lambda a: a["x"] * a["y"], x=x, y=y))
    n = float(WINDOW * WINDOW)
    cov = n / (n - 1)  # sample covariance, as scikit-image's use_sample_covariance=True
    ssim_map = _math(
        lambda a: (
            ((a["mx"] * a["my"] * 2 + _C1) * ((a["mxy"] - a["mx"] * a["my"]) * (2 * cov) + _C2))
            / (
                (a["mx"] * a["mx"] + a["my"] * a["my"] + _C1)
                * ((a["mxx"] - a["mx"] * a["mx"] + a["myy"] - a["my"] * a["my"]) * cov + _C2)
            )
        ),
        mx=mx,
        my=my,
        mxx=mxx,
        myy=myy,
        mxy=mxy,
    )
    return _mean(ssim_map)


def _mean(image: Image.Image) -> float:
    # ImageStat bins F images into 256 buckets, so average the floats themselves.
    pixels = getattr(image, "get_flattened_data", image.getdata)()  # getdata: Pillow < 13
    return math.fsum(pixels) / (image.width * image.height)


def ssim_luma(reference: Image.Image, test: Image.Image) -> float:
    """SSIM of the luma (ITU-R 601 Y) of two RGB images of the same size."""
    return ssim_band(reference.convert("RGB").convert("F"), test.convert("RGB").convert("F"))


def ssim_rgb(reference: Image.Image, test: Image.Image) -> float:
    """Mean SSIM over the R, G and B channels (strict for 4:2:0 chroma-subsampled JPEG)."""
    pairs = zip(reference.convert("RGB").split(), test.convert("RGB").split(), strict=True)
    return sum(ssim_band(a, b) for a, b in pairs) / 3


def psnr_rgb(reference: Image.Image, test: Image.Image) -> float:
    """Peak signal-to-noise ratio over R, G and B, in dB (inf for identical images)."""
    diff = ImageChops.difference(reference.convert("RGB"), test.convert("RGB"))
    histogram = diff.histogram()
    squared = sum(count * (value % 256) ** 2 for value, count in enumerate(histogram))
    mse = squared / (reference.width * reference.height * 3)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def fidelity(original: Image.Image, preview: Image.Image) -> dict[str, float]:
    """SSIM (luma and RGB) and PSNR of ``preview`` against ``original`` resized to its size."""
    reference = original.convert("RGB")
    if reference.size != preview.size:
        reference = reference.resize(preview.size, Image.Resampling.LANCZOS)
    return {
        "ssim_luma": ssim_luma(reference, preview),
        "ssim_rgb": ssim_rgb(reference, preview),
        "psnr_db": psnr_rgb(reference, preview),
    }
