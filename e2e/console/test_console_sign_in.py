"""Signing in to the console in Chromium."""

from playwright.async_api import expect

from console.browser import sign_in


async def test_the_owner_signs_in_and_sees_the_conversations(page):
    await sign_in(page)

    await page.wait_for_url("**/console/conversations")
    await expect(page.get_by_role("heading", name="Разговоры")).to_be_visible()
    await expect(page.get_by_role("button", name="Выйти")).to_be_visible()
