"""What a customer sees in WhatsApp, and what the databases then hold, with the whole system running."""

import asyncio
import re

import httpx

from system import ADMIN_KEY, fetch, follow_ups_of, move_conversation_back

SLOT = re.compile(r"\d{2}\.\d{2}\.\d{4} в \d{2}:\d{2}")


def agent_api(system) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)


async def test_price_question_is_answered_with_the_price_as_a_reply_and_marked_read(system, customer):
    question = await customer.write(
        "77011110001",
        "Добрый день! Сколько стоит тариф Старт для нашего склада?",
        sender_name="Айгерим",
        business_name="ТОО Альфа Трейд",
    )

    [reply] = await customer.wait_sent_to("77011110001", 1)

    assert reply["kind"] == "reply" and reply["reply_to"] == question["id"]
    assert "15 000 ₸" in reply["body"]
    assert question["id"] in await customer.read_ids()
    [contact] = await fetch(
        system.agent.database_url, "SELECT is_client FROM contacts WHERE phone_number = $1", "77011110001"
    )
    assert contact["is_client"] is True


async def test_call_at_20_is_moved_into_working_hours_and_booked_once_confirmed(system, customer):
    phone = "77011110003"
    await customer.write(
        phone, "Здравствуйте, интересует ваш сервис для склада, какие условия?", business_name="ТОО Бета"
    )
    await customer.wait_sent_to(phone, 1)

    await customer.write(phone, "Давайте созвонимся завтра в 20:00")
    offer = (await customer.wait_sent_to(phone, 2))[1]["body"]
    offered = SLOT.search(offer)
    assert offered, offer
    assert not offered.group().endswith("в 20:00")

    await customer.write(phone, "Да, подходит")
    confirmation = (await customer.wait_sent_to(phone, 3))[2]["body"]
    assert "Записал" in confirmation and offered.group() in confirmation

    async with agent_api(system) as api:
        contact = (await api.get(f"/contacts/{phone}")).json()
        calls = (await api.get("/scheduled-calls", params={"status": "scheduled"})).json()
    booked = [c for c in calls["items"] if c["contact_id"] == contact["id"]]
    assert len(booked) == 1


async def test_voice_note_is_transcribed_and_answered_like_text(system, customer):
    phone = "77011110004"
    await customer.write(
        phone, type="ptt", transcript="Здравствуйте, сколько стоит тариф Старт?", business_name="ИП Гамма"
    )

    [reply] = await customer.wait_sent_to(phone, 1)

    assert "15 000 ₸" in reply["body"]
    [stored] = await fetch(
        system.agent.database_url,
        "SELECT message_text, is_voice FROM messages WHERE phone_number = $1 AND NOT is_from_bot",
        phone,
    )
    assert stored["is_voice"] and stored["message_text"].startswith("[ТРАНСКРИБАЦИЯ] ")


async def test_spam_whitelist_and_groups_get_nothing(system, customer):
    await customer.write("77011110005", "Заработок от 100 000 в день! Подпишись на канал http://easy.money")
    await customer.write("77752837306", "Привет, это я, перезвони")  # the owner's personal number
    await customer.write("77011110006", "Всем привет, сколько стоит тариф Старт?", group=True)
    # A real lead written after them: once it is answered, the poller has been past all three.
    await customer.write("77011110007", "Сколько стоит тариф Бизнес?", business_name="ТОО Дельта")
    await customer.wait_sent_to("77011110007", 1)

    async def spam_classified() -> bool:
        rows = await fetch(
            system.agent.database_url, "SELECT is_client FROM contacts WHERE phone_number = '77011110005'"
        )
        return bool(rows) and rows[0]["is_client"] is False

    for _ in range(50):
        if await spam_classified():
            break
        await asyncio.sleep(0.2)
    assert await spam_classified()
    for phone in ("77011110005", "77752837306", "77011110006"):
        assert await customer.sent_to(phone) == []
    forwarded = await fetch(
        system.gateway.database_url,
        "SELECT phone_number FROM message_logs WHERE phone_number IN ('77752837306', '77011110006')",
    )
    assert forwarded == []
    unknown = await fetch(
        system.agent.database_url,
        "SELECT phone_number FROM contacts WHERE phone_number IN ('77752837306', '77011110006')",
    )
    assert unknown == []


async def test_restarts_mid_conversation_answer_every_message_exactly_once(system, customer):
    phone = "77011110008"
    first = await customer.write(
        phone, "Здравствуйте, сколько стоит тариф Профи?", business_name="ТОО Эпсилон"
    )
    await customer.wait_sent_to(phone, 1)

    system.agent.kill()
    second = await customer.write(phone, "А внедрение под ключ сколько стоит?")
    await asyncio.sleep(2)  # the gateway forwards it while the agent is down
    system.agent.start()
    await customer.wait_sent_to(phone, 2)

    system.gateway.kill()
    third = await customer.write(phone, "И сколько стоит перенос данных из 1С?")
    system.gateway.start()
    sent = await customer.wait_sent_to(phone, 3)

    await asyncio.sleep(3)  # time for any duplicate to surface
    sent = await customer.sent_to(phone)
    assert [m["reply_to"] for m in sent] == [first["id"], second["id"], third["id"]]


async def test_a_lead_who_says_no_is_never_chased(system, customer):
    phone = "77011110010"
    await customer.write(phone, "Сколько стоит тариф Старт?", business_name="ТОО Эта")
    await customer.wait_sent_to(phone, 1)
    await customer.write(phone, "Нет, не интересно")
    await customer.wait_sent_to(phone, 2)

    await move_conversation_back(system.agent.database_url, phone, hours=25)

    assert await follow_ups_of(system.agent.database_url, phone, wait_seconds=4) == []
    assert len(await customer.sent_to(phone)) == 2
