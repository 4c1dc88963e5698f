"""What the console's browser tests share: Debian's Chromium driven by Playwright (never `playwright
install`), a fresh browser per test at an address of its own, and signing in the way a person does.

Each browser says it comes from an address of its own (X-Forwarded-For, which the services trust from
127.0.0.1 as uvicorn does behind a proxy), so one test's wrong passwords never lock another test out."""

import itertools
import os
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
ASTANA = ZoneInfo("Asia/Almaty")
TUESDAY_11 = datetime(2026, 12, 8, 11, 0, tzinfo=ASTANA)
PASSWORD = "e2e-консоль-пароль"
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


async def new_context(chromium: Browser, base_url: str, **options) -> BrowserContext:
    """A fresh browser (no cookies) at an address of its own."""
    context = await chromium.new_context(
        base_url=base_url,
        locale="ru-RU",
        extra_http_headers={"X-Forwarded-For": next(_addresses)},
        **options,
    )
    context.set_default_timeout(15_000)
    return context


async def sign_in(page: Page, password: str = PASSWORD, path: str = "/console") -> None:
    """Goes to `path` and signs in on the page the console sends the browser to."""
    await page.goto(path)
    await page.get_by_label("Пароль").fill(password)
    await page.get_by_role("button", name="Войти").click()
