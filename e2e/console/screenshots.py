"""Screenshots of the console's main pages for the README (docs/console/*.png), taken in Chromium against a
system that has just played `make demo`'s morning:

    cd e2e && ../.venv/bin/python -m console.screenshots

It starts its own system (as make demo does), plays the morning, signs in and photographs each page."""

import asyncio
import secrets
from pathlib import Path

from demo import MORNING, SETTINGS, play_morning
from playwright.async_api import async_playwright

from console.browser import CHROMIUM, new_context, sign_in
from system import ROOT, Sandbox, System

OUT = ROOT / "docs" / "console"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# (file, path, viewport): the pages the README shows.
SHOTS = (
    ("conversations.png", "/console/conversations", LAPTOP),
    ("conversation.png", "/console/conversations/77011230007", LAPTOP),
    ("conversation_phone.png", "/console/conversations/77011230001", PHONE),
    ("calls.png", "/console/calls?week=2026-12-07", LAPTOP),
    ("knowledge.png", "/console/knowledge?q=Сколько+стоит+тариф+Бизнес", LAPTOP),
    ("prompts.png", "/console/prompts/sales_agent", LAPTOP),
    ("health.png", "/console/health", LAPTOP),
    ("try_it.png", "/console/try?phone=77011230001&name=Айгерим&business=ТОО+«Альфа+Трейд»", LAPTOP),
)


async def take(base_url: str, password: str, out: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for name, path, viewport in SHOTS:
            context = await new_context(browser, base_url, viewport=viewport)
            page = await context.new_page()
            await sign_in(page, password, path)
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(800)  # the live parts' first refresh
            await page.screenshot(
                path=str(out / name), full_page=viewport is LAPTOP and "prompts" not in name
            )
            await context.close()
        await browser.close()


async def main() -> None:
    password = secrets.token_urlsafe(9)
    settings = {name: dict(values) for name, values in SETTINGS.items()}
    settings["ai-agent-service"] |= {"CONSOLE_PASSWORD": password, "RATE_LIMIT_PER_MINUTE": "6000"}
    system = System(moment=MORNING)
    system.start(settings)
    customer = Sandbox(system.sandbox_url)
    try:
        await play_morning(system, customer)
        await take(system.agent.url, password, OUT)
    finally:
        await customer.http.aclose()
        await asyncio.to_thread(system.stop)
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())
