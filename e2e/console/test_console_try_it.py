"""Try it as a customer, in Chromium on the sandbox: the operator writes as a client and records a voice note
(Chromium's fake microphone), and the bot's replies arrive in the page's chat by themselves."""

from playwright.async_api import expect


async def test_writing_and_speaking_as_a_customer_gets_the_bots_replies(console):
    await console.get_by_role("link", name="Как клиент").click()
    await console.get_by_label("Телефон").fill("77014440501")
    await console.get_by_label("Имя").fill("Сауле")
    await console.get_by_label("Компания").fill("ТОО Пробный")
    await console.get_by_role("button", name="Открыть чат").click()
    await expect(console.locator("#chat")).to_contain_text("Сообщений пока нет")

    await console.get_by_label("Сообщение от клиента").fill("Здравствуйте! Сколько стоит тариф Бизнес?")
    await console.get_by_role("button", name="Написать").click()

    chat = console.locator("#chat")
    await expect(chat.locator("li.mine")).to_contain_text("Здравствуйте! Сколько стоит тариф Бизнес?")
    await expect(chat.locator("li.bot").first).to_contain_text("35 000 ₸", timeout=30_000)

    await console.get_by_label("Голосовое: что вы скажете").fill("А есть интеграция с Kaspi?")
    await console.get_by_role("button", name="🎤 Записать").click()
    await expect(console.locator("#voice-state")).to_have_text("Идёт запись…")
    await console.wait_for_timeout(1200)
    await console.get_by_role("button", name="■ Остановить и отправить").click()

    await expect(chat.locator("li.mine").nth(1)).to_contain_text("🎤 Голосовое сообщение", timeout=20_000)
    await expect(chat.locator("li.bot").nth(1)).to_contain_text("Kaspi", timeout=40_000)
