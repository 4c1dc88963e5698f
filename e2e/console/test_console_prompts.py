"""The prompt editor in Chromium: an edited sales prompt is what the model gets for the next client message;
a save that drops a placeholder is refused naming it."""

from playwright.async_api import expect

MARK = "ПРАВКА ИЗ КОНСОЛИ: начинай ответ с приветствия от имени склада."


async def test_an_edited_prompt_writes_the_next_reply(console, customer):
    await console.get_by_role("link", name="Промпты").click()
    await console.wait_for_url("**/console/prompts/sales_agent")
    text = console.get_by_label("Текст промпта «Продавец (ответы клиентам)»")
    original = await text.input_value()
    await text.fill(MARK + "\n" + original)
    await console.get_by_role("button", name="Сохранить").click()
    await expect(console.get_by_role("status")).to_contain_text("Сохранено")
    await expect(console.locator("li[data-version]")).to_have_count(1)

    phone = "77014440301"
    question = "Сколько стоит тариф Старт для склада в Таразе?"
    await customer.write(phone, question, business_name="ТОО Промпт")
    await customer.wait_sent_to(phone, 1)

    [prompt] = [p for p in await customer.prompts("sales") if question in p]
    assert prompt.startswith(MARK)
    assert "{reply_language}" not in prompt  # the placeholders are filled as before

    # The file's version back, for the other tests of this system.
    await console.get_by_role("button", name="Восстановить файл").click()
    await expect(console.get_by_role("status")).to_contain_text("Версия восстановлена")
    await expect(text).to_have_value(original)


async def test_a_save_without_a_placeholder_is_refused_naming_it(console):
    await console.goto("/console/prompts/follow_up")
    text = console.get_by_label("Текст промпта «Дожим (касания молчащим клиентам)»")
    original = await text.input_value()
    await text.fill(original.replace("{touch_number}", "первое"))
    await console.get_by_role("button", name="Сохранить").click()

    await expect(console.get_by_role("alert")).to_have_text(
        "Не сохранено: в тексте нет обязательной подстановки {touch_number}."
    )
    await console.get_by_role("link", name="Вернуться").click()
    await expect(console.get_by_label("Текст промпта «Дожим (касания молчащим клиентам)»")).to_have_value(
        original
    )
