"""The health page in Chromium: both services healthy, the queues with their depths, a dead letter shown with
its reason, and replaying it gets the customer the answer that was stuck."""

import json

import aio_pika
from playwright.async_api import expect

from system import RABBITMQ_URL


async def park(system, body: dict, reason: str) -> None:
    """`body` in the incoming queue's DLQ, as the consumer parks a message it gave up on."""
    queue = system.queues["QUEUE_INCOMING_MESSAGES"]
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"{queue}.dlx")
        message = aio_pika.Message(
            json.dumps(body, ensure_ascii=False).encode(),
            message_id=body["message_id"],
            headers={"x-dlq-reason": reason, "x-original-queue": queue},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
        )
        await exchange.publish(message, routing_key="")


async def test_a_dead_letter_is_explained_and_its_replay_answers_the_customer(system, console, customer):
    phone = "77014440401"
    reason = "GeminiUnavailable: 503 from Gemini (after 40 attempts)"
    await park(
        system,
        {
            "message_id": "E2E-DEAD-0401",
            "chat_id": f"{phone}@c.us",
            "phone_number": phone,
            "sender_name": "Тимур",
            "message_text": "Здравствуйте! Сколько стоит тариф Бизнес?",
            "is_voice": False,
            "timestamp": system.now().isoformat(),
            "contact_info": {"FirstName": "Тимур", "BusinessName": "ТОО Очередь"},
        },
        reason,
    )

    await console.get_by_role("link", name="Состояние").click()

    await expect(console.locator("#agent-health h2")).to_contain_text("работает")
    await expect(console.locator("#gateway-health h2")).to_contain_text("работает")
    row = console.locator('tr[data-queue="incoming_messages"]')
    await expect(row.locator("td.dead")).to_have_text("1")
    letters = console.locator('ol.dead-letters[data-queue="incoming_messages"]')
    await expect(letters).to_contain_text(reason)
    await expect(letters).to_contain_text("+77014440401: Здравствуйте! Сколько стоит тариф Бизнес?")

    await row.get_by_role("button", name="Вернуть в очередь incoming_messages").click()

    await expect(console.get_by_role("status")).to_have_text("Возвращено в очередь сообщений: 1.")
    [reply] = await customer.wait_sent_to(phone, 1)
    assert "35 000 ₸" in reply["body"]
    await console.reload()
    await expect(console.locator('tr[data-queue="incoming_messages"] td.dead')).to_have_text("0")
    await expect(console.locator("#tokens")).to_contain_text("Ответы клиентам")
