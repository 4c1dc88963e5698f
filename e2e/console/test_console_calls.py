"""The calls calendar in Chromium: a call booked from a conversation shows in its week's slot, the arrows
move between weeks, and the call leads back to its chat."""

from playwright.async_api import expect


async def test_a_booked_call_shows_in_the_week_and_leads_to_its_chat(console, customer):
    phone = "77014440201"
    await customer.write(phone, "Здравствуйте, хочу узнать про тариф Бизнес", sender_name="Мадина")
    await customer.wait_sent_to(phone, 1)
    await console.goto(f"/console/conversations/{phone}")
    await console.get_by_label("Назначить созвон (время Астаны)").fill("2026-12-09T14:30")
    await console.get_by_role("button", name="Назначить").click()
    await expect(console.get_by_role("status")).to_contain_text("Созвон назначен")

    await console.get_by_role("link", name="Созвоны").click()

    await expect(console.locator("#week-title")).to_have_text("07.12 — 13.12.2026")
    slot = console.locator("tr", has=console.get_by_role("rowheader", name="14:30")).locator("td").nth(2)
    await expect(slot.locator("a.call")).to_contain_text("Мадина")
    await console.get_by_role("link", name="Следующая неделя →").click()
    await expect(console.locator("#week-title")).to_have_text("14.12 — 20.12.2026")
    await expect(console.locator("a.call")).to_have_count(0)
    await console.get_by_role("link", name="← Предыдущая неделя").click()

    await console.locator("a.call", has_text="Мадина").click()
    await console.wait_for_url(f"**/console/conversations/{phone}")
    await expect(console.locator(".calls")).to_contain_text("09.12.2026 14:30")
