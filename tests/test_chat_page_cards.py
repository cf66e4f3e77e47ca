"""The chat page in headless Chromium shows a card that changes in place (REPLY_STYLE=card)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgbot.delivery import texts as chat_texts
from imgbot.simulator import DingTalkSimulator
from tests.bot_harness import running_bot
from tests.fake_providers import FakeProviders
from tests.polling import wait_until

pytestmark = [pytest.mark.minio, pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CARD_ROW = '.msg[data-from="bot"][data-msgtype="card"]'
CARD_IMAGE_LOADED = f"""() => [...document.querySelectorAll('{CARD_ROW} img.card-image')]
  .some((i) => i.complete && i.naturalWidth > 0)"""


async def test_card_turns_from_drawing_into_the_picture(
    simulator: DingTalkSimulator, s3_env: dict[str, str], providers: FakeProviders
) -> None:
    """The page shows the card saying 生成中…, then the same card (one message) with the picture."""
    from playwright.async_api import async_playwright

    providers.script.outcome = "hang"
    settings = {"reply_style": "card", "card_template_id": "page.schema"}
    async with (
        running_bot(simulator, **settings, **providers.settings_for("openai")),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 900})
            await page.goto(simulator.chat_url)
            await page.fill("#input", "帮我画一只可爱的小猫")
            await page.click("#send")
            card = page.locator(CARD_ROW)
            await card.locator(".card-title", has_text=chat_texts.CARD_DRAWING).wait_for(
                timeout=30_000
            )
            entry_id = await card.get_attribute("data-id")
            assert await card.locator("img.card-image").count() == 0
            await wait_until(lambda: providers.hanging == 1, timeout=30)
            providers.script.outcome = "succeed"
            providers.release()
            await page.wait_for_function(CARD_IMAGE_LOADED, timeout=30_000)
            assert await page.locator(CARD_ROW).count() == 1
            assert await card.get_attribute("data-id") == entry_id
            assert await card.locator(".card-title").inner_text() == "图片已生成"
            assert await card.locator("a", has_text="查看原图").count() == 1
            assert await page.locator('.msg[data-from="bot"]').count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "chat-page-card.png"), full_page=True)
        finally:
            await browser.close()
