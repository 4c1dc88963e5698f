"""One running system for every console test (Tuesday 2026-12-08 from 11:00 in Astana), one Chromium, and a
fresh browser per test (console/browser.py)."""

import shutil

import pytest
from playwright.async_api import Browser, Page, async_playwright

from console.browser import CHROMIUM, PASSWORD, TUESDAY_11, new_context, sign_in
from fixtures import running_system
from system import ROOT


@pytest.fixture(scope="package")
def system(tmp_path_factory):
    # The browser polls every few seconds: the per-address rate limit must not get in a test's way. PDFs
    # uploaded in a test go to a copy of the sample knowledge base, never into the source tree.
    knowledge = tmp_path_factory.mktemp("console") / "knowledge_base"
    shutil.copytree(
        ROOT / "ai-agent-service" / "knowledge_base", knowledge, ignore=shutil.ignore_patterns(".*")
    )
    env = {
        "ai-agent-service": {
            "CONSOLE_PASSWORD": PASSWORD,
            "RATE_LIMIT_PER_MINUTE": "6000",
            "KNOWLEDGE_BASE_PATH": str(knowledge),
            "GATEWAY_URL": "{gateway}",
            "SANDBOX_URL": "{sandbox}",
        }
    }
    with running_system(TUESDAY_11, env) as system:
        yield system


@pytest.fixture(scope="package")
async def chromium() -> Browser:
    async with async_playwright() as playwright:
        # A fake microphone, allowed without asking: "try it as a customer" records voice notes.
        args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        await browser.close()


@pytest.fixture
async def page(chromium, system) -> Page:
    """A browser tab, not signed in."""
    context = await new_context(chromium, system.agent.url)
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def console(page) -> Page:
    """A browser tab signed in to the console, on the conversations page."""
    await sign_in(page)
    await page.wait_for_url("**/console/conversations")
    return page
