"""The chat page in headless Chromium: attach or paste a picture, ask for a change, quote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import running_bot
from tests.images import encode, photo_like

pytestmark = [pytest.mark.minio, pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The bot's images that have loaded, as [width, height] each.
BOT_IMAGES = """() => [...document.querySelectorAll('.msg[data-from="bot"] img.reply-image')]
  .filter((i) => i.complete && i.naturalWidth > 0).map((i) => [i.naturalWidth, i.naturalHeight])"""
PASTE = """(b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], "pasted.png", { type: "image/png" }));
  document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data }));
}"""


def wide_picture() -> bytes:
    """A 240x150 PNG: an edit keeps its shape, a drawing would be IMAGE_SIZE (square)."""
    return encode(photo_like(240, 5).resize((240, 150)), "PNG")


async def bot_images(page: Any, count: int) -> list[list[int]]:
    """Wait until ``count`` bot images have loaded; return their sizes."""
    await page.wait_for_function(f"() => ({BOT_IMAGES})().length >= {count}", timeout=30_000)
    sizes: list[list[int]] = await page.evaluate(BOT_IMAGES)
    return sizes


async def test_attach_edit_quote_and_paste(
    simulator: DingTalkSimulator, s3_env: dict[str, str]
) -> None:
    """Attaching a picture with an instruction shows the edited image (the picture's own shape);
    quoting that image edits it again; a pasted picture alone gets the how-to hint."""
    import base64

    from playwright.async_api import async_playwright

    data = wide_picture()
    async with running_bot(simulator), async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 1000})
            await page.goto(simulator.chat_url)
            await page.set_input_files(
                "#file", files=[{"name": "p.png", "mimeType": "image/png", "buffer": data}]
            )
            await page.wait_for_selector("#attached-preview")
            await page.fill("#input", "背景换成海边")
            await page.click("#send")
            assert await bot_images(page, 1) == [[240, 150]]
            assert await page.locator("img.user-picture").count() == 1

            bot_image = page.locator('.msg[data-from="bot"]', has=page.locator("img.reply-image"))
            await bot_image.last.locator(".quote-button").click()
            await page.wait_for_selector("#quoting")
            await page.fill("#input", "加一顶帽子")
            await page.click("#send")
            assert await bot_images(page, 2) == [[240, 150], [240, 150]]

            await page.evaluate(PASTE, base64.b64encode(data).decode())
            await page.wait_for_selector("#attached-preview")
            await page.click("#send")
            hint = page.locator('.msg[data-from="bot"] .bubble', has_text=chat_texts.PICTURE_ALONE)
            await hint.wait_for(timeout=30_000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "chat-page-edit.png"), full_page=True)
        finally:
            await browser.close()
