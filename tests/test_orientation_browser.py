"""In headless Chromium, the stored original and its preview show the same way up."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from imgbot.images.renditions import prepare
from tests import hostile
from tests.images import default_limits, encode, quadrants

CHROMIUM = "/usr/bin/chromium"
# Draws an <img> as Chromium lays it out (EXIF orientation applied where Chromium applies it)
# and returns its size and the colour near each corner, each channel rounded to 0-4.
SAMPLE = """async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const [w, h] = [img.naturalWidth, img.naturalHeight];
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3))
    .map((c) => Math.round(c / 64));
  const [l, r, t, b] = [Math.floor(w / 8), w - 1 - Math.floor(w / 8),
                        Math.floor(h / 8), h - 1 - Math.floor(h / 8)];
  return [w, h, at(l, t), at(r, t), at(l, b), at(r, b)];
}"""
CASES = {
    "jpeg-orientation-6": lambda: encode(quadrants(), "JPEG", exif=hostile.orientation(6)),
    "jpeg-orientation-3": lambda: encode(quadrants(), "JPEG", exif=hostile.orientation(3)),
    "jpeg-xmp-orientation": hostile.jpeg_xmp_orientation,
    "png-orientation-3": hostile.png_orientation,
    "webp-orientation-6": hostile.webp_orientation,
}


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """A blank page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _shown(page: Any, data: bytes, content_type: str) -> list[Any]:
    url = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    result: list[Any] = page.evaluate(SAMPLE, url)
    return result


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(CASES))
def test_original_and_preview_shown_alike(page: Any, name: str) -> None:
    """Chromium shows the original and the preview with the same size and corner colours."""
    prepared = prepare(CASES[name](), default_limits())
    original = _shown(page, prepared.original.data, prepared.original.content_type)
    preview = _shown(page, prepared.preview.data, prepared.preview.content_type)
    assert original == preview
