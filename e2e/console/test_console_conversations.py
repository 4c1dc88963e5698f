"""The operator at work in Chromium: a customer's conversation appears on the list by itself, the operator
takes the chat over and writes a reply that reaches the customer's WhatsApp (and is not taken back for a
person's message typed on the phone), a guarded reply is explained, and the pages fit a phone's screen."""

import asyncio

from playwright.async_api import Page, expect

from console.browser import new_context, sign_in
from system import fetch

PRICE_FALLBACK = (
    "Точную стоимость для вашего случая подтвердит наш менеджер 😊 "
    "Хотите, я запишу вас на короткий созвон с ним?"
)


def row(page: Page, phone: str):
    return page.locator(f'tr[data-phone="{phone}"]')


async def test_a_new_conversation_appears_on_the_list_by_itself(console, customer):
    phone = "77014440001"
    await console.evaluate("window.notReloaded = true")

    await customer.write(phone, "Здравствуйте! Сколько стоит тариф Бизнес?", sender_name="Гульнара")

    await expect(row(console, phone)).to_contain_text("Гульнара", timeout=20_000)
    await expect(row(console, phone)).to_contain_text("+77014440001")
    # The bot's reply follows, and the row says who wrote last.
    await customer.wait_sent_to(phone, 1)
    await expect(row(console, phone)).to_contain_text("Бот,", timeout=20_000)
    await expect(row(console, phone)).to_contain_text("35 000 ₸")
    assert await console.evaluate("window.notReloaded") is True


async def test_the_operator_takes_over_and_the_reply_reaches_the_customer_once(system, console, customer):
    phone = "77014440002"
    await customer.write(phone, "Добрый день, нужен счёт на тариф Старт", business_name="ТОО Гамма")
    await customer.wait_sent_to(phone, 1)
    await expect(row(console, phone)).to_be_visible(timeout=20_000)

    await row(console, phone).get_by_role("link").click()
    await console.get_by_role("button", name="Взять чат на себя").click()
    await expect(console.get_by_role("status")).to_contain_text("Чат ваш")
    await expect(console.locator("#stage")).to_have_text("пауза: чат ведёт оператор")
    await console.get_by_label("Ответ клиенту").fill("Здравствуйте! Это Айгерим, счёт пришлю через 10 минут.")
    await console.get_by_role("button", name="Отправить клиенту").click()

    await expect(console.get_by_role("status")).to_contain_text("Сообщение отправлено клиенту")
    sent = await customer.wait_sent_to(phone, 2)
    assert sent[1]["body"] == "Здравствуйте! Это Айгерим, счёт пришлю через 10 минут."
    await expect(console.locator('li[data-author="owner"]')).to_contain_text("Оператор · из консоли")

    # The client answers; the bot keeps out of the chat the operator took.
    await customer.write(phone, "Спасибо, жду")
    await expect(console.locator("ol.timeline > li").first).to_contain_text("Спасибо, жду", timeout=20_000)
    await expect(console.locator(".decision.paused").first).to_contain_text("Бот на паузе")
    await asyncio.sleep(2)  # a few polls of the gateway: the console's send must come back as its own echo
    assert len(await customer.sent_to(phone)) == 2
    operator_messages = await fetch(
        system.agent.database_url,
        "SELECT outgoing_id FROM messages WHERE phone_number = $1 AND sent_by = 'operator'",
        phone,
    )
    [only] = [m["outgoing_id"] or "" for m in operator_messages]
    assert only.startswith("console-")


async def test_a_guarded_reply_is_explained(console, customer):
    phone = "77014440003"
    await customer.script(
        phone,
        {
            "reply": "Тариф Старт стоит 4 500 тенге 😊",
            "stance": "asking",
            "agreed_to_call": False,
            "proposed_call_time": None,
            "confirmed_call_time": False,
        },
    )
    await customer.write(phone, f"Сколько стоит тариф Старт? {phone}", business_name="ТОО Дельта")
    [reply] = await customer.wait_sent_to(phone, 1)
    assert reply["body"] == PRICE_FALLBACK

    await console.goto(f"/console/conversations/{phone}")

    guarded = console.locator(".decision.guarded")
    await expect(guarded).to_contain_text("Проверка остановила ответ модели")
    await expect(guarded.locator("dd").nth(0)).to_have_text("Тариф Старт стоит 4 500 тенге 😊")
    await expect(guarded.locator("dd").nth(1)).to_have_text(PRICE_FALLBACK)
    why = guarded.locator("dd").nth(2)
    await expect(why).to_have_text("сумма «4 500 тенге» не из базы знаний")
    await expect(why).to_have_attribute("title", "amount 4 500 тенге is not in the knowledge base")


async def test_the_pages_fit_a_phone_screen(chromium, system, customer):
    phone = "77014440004"
    await customer.write(phone, "Здравствуйте, есть ли интеграция с Kaspi?", business_name="ТОО Узкий Экран")
    await customer.wait_sent_to(phone, 1)
    context = await new_context(chromium, system.agent.url, viewport={"width": 375, "height": 740})
    page = await context.new_page()
    errors = []  # a script or a style the page's Content-Security-Policy refused would show here
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        await sign_in(page)
        await expect(row(page, phone)).to_be_visible()
        wide = "document.documentElement.scrollWidth"
        assert await page.evaluate(wide) <= 375
        box = await row(page, phone).bounding_box()
        assert box is not None and box["width"] <= 375

        await row(page, phone).get_by_role("link").click()
        await expect(page.get_by_role("button", name="Отправить клиенту")).to_be_visible()
        assert await page.evaluate(wide) <= 375
        await page.wait_for_timeout(3500)  # one refresh of the messages
        assert errors == []
    finally:
        await context.close()
