"""What a customer sees in WhatsApp, and what the databases then hold, with the whole system running."""

import asyncio
import re

import httpx
import pytest

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


async def test_status_updates_channel_posts_and_hidden_numbers_without_a_phone_are_never_answered(
    system, customer
):
    await customer.write("77011110021", "Новая коллекция! Сколько стоит тариф Старт?", chat="status")
    await customer.write(None, "Канал: сколько стоит тариф Старт?", chat="channel")
    await customer.write("77011110022", "Сколько стоит тариф Старт?", chat="lid", lid_with_phone=False)
    # A hidden-number chat that carries the real phone is a person: answered in that chat.
    hidden = await customer.write(
        "77011110023", "Сколько стоит тариф Старт?", chat="lid", lid_with_phone=True
    )
    for _ in range(100):
        sent = (await customer.http.get("/sandbox/sent")).json()["messages"]
        if any(m["reply_to"] == hidden["id"] for m in sent):
            break
        await asyncio.sleep(0.3)
    else:
        raise AssertionError("the hidden-number chat with a real phone was not answered")

    for phone in ("77011110021", "77011110022"):
        assert await customer.sent_to(phone) == []
    async with httpx.AsyncClient(base_url=system.gateway.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        skipped = (await api.get("/stats")).json()["skipped_today"]
    assert skipped["status_broadcast"] >= 1 and skipped["channel"] >= 1 and skipped["hidden_number"] >= 1
    agent_contacts = await fetch(
        system.agent.database_url,
        "SELECT phone_number FROM contacts WHERE phone_number IN ('77011110021', '77011110022')",
    )
    assert agent_contacts == []


@pytest.mark.parametrize(
    "written", ["+7 775 283 73 06", "8 775 283 73 06", "8(775)283-73-06", "77752837306@c.us"]
)
async def test_a_whitelisted_number_is_refused_in_any_written_form(system, written):
    async with httpx.AsyncClient(base_url=system.gateway.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        answer = await api.post(
            "/test/send-message", json={"phone_number": written, "message_text": "Привет"}
        )

    assert answer.status_code == 403
