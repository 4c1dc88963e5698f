"""The owner stays in charge and the managers hear about it, with the whole system running on Tuesday
2026-12-08 from 11:00 in Astana: a person taking over a chat and the bot coming back, stop requests, the
daily budget, the send rate, an auto-responder, calls shared by two managers with their notifications, a
question for a manager, reminders, and the CRMs told of clients and calls."""

import asyncio
import hashlib
import hmac
import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures import running_system
from system import ADMIN_KEY, fetch, follow_ups_of, move_conversation_back

ASTANA = ZoneInfo("Asia/Almaty")
TUESDAY_11 = datetime(2026, 12, 8, 11, 0, tzinfo=ASTANA)
AIGERIM, DANIYAR = "77019990001", "77019990002"
MANAGERS = f"Айгерим:{AIGERIM},Данияр:{DANIYAR}"
SENDS_PER_MINUTE = 600
CRM_SECRET = "e2e-crm-secret"
# A person typing answers within seconds too: the loop breaker's threshold is kept below how fast this
# suite's "clients" write, and its auto-responder answers faster still.
LOOP_REPLY_SECONDS = "1.5"
STOP_CONFIRMATION = {
    "ru": "Хорошо, больше не будем вам писать. Если понадобится помощь — просто напишите нам 🙏",
    "kk": "Жақсы, енді сізге жазбаймыз. Көмек керек болса — бізге жазыңыз 🙏",
}


@pytest.fixture(scope="module")
def system():
    env = {
        "whatsapp-gateway": {"MANAGERS": MANAGERS, "MAX_SENDS_PER_MINUTE": str(SENDS_PER_MINUTE)},
        "ai-agent-service": {
            "MANAGERS": MANAGERS,
            "LOOP_REPLY_SECONDS": LOOP_REPLY_SECONDS,
            "CRM_WEBHOOK_URL": "{sandbox}/crm/events",
            "CRM_WEBHOOK_SECRET": CRM_SECRET,
            "BITRIX24_WEBHOOK_URL": "{sandbox}/rest/1/e2e-bitrix-secret/",
        },
    }
    with running_system(TUESDAY_11, env) as system:
        yield system


def agent_api(system) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)


async def contact_row(system, phone: str):
    [row] = await fetch(system.agent.database_url, "SELECT * FROM contacts WHERE phone_number = $1", phone)
    return row


async def settle(customer, phone: str, count: int, seconds: float = 3) -> list[dict]:
    """What `phone` got, once nothing more has arrived for a few seconds (to show that nothing else came)."""
    await asyncio.sleep(seconds)
    sent = await customer.sent_to(phone)
    assert len(sent) == count, [m["body"] for m in sent]
    return sent


async def test_a_person_taking_over_pauses_the_bot_which_comes_back_after_the_pause(system, customer):
    phone = "77013330001"
    await customer.write(phone, "Здравствуйте, сколько стоит тариф Старт?", business_name="ТОО Ромашка")
    await customer.wait_sent_to(phone, 1)
    await customer.write(phone, "Добрый день! Я Айгерим, менеджер. Сейчас пришлю КП на почту.", from_me=True)
    await asyncio.sleep(2)  # the gateway forwards the owner's message as an operator's
    await customer.write(phone, "Спасибо, жду")

    await settle(customer, phone, 1)  # the bot keeps out of it
    contact = await contact_row(system, phone)
    assert contact["pause_reason"] == "operator_replied"

    # As if OPERATOR_PAUSE_HOURS had passed without the owner writing again.
    await fetch(
        system.agent.database_url,
        "UPDATE contacts SET paused_until = $2 WHERE phone_number = $1",
        phone,
        system.now(),
    )
    await customer.write(phone, "А интеграция с Kaspi есть?")
    reply = (await customer.wait_sent_to(phone, 2))[1]
    assert reply["body"]
    prompt = (await customer.prompts("sales"))[-1]
    assert "Менеджер: Добрый день! Я Айгерим, менеджер. Сейчас пришлю КП на почту." in prompt
    new_message = prompt.split("НОВОЕ СООБЩЕНИЕ КЛИЕНТА:")[1].split("ТЕКУЩАЯ ДАТА")[0]
    assert (
        "Kaspi" in new_message and "Спасибо, жду" not in new_message
    )  # what came during the pause is the person's


@pytest.mark.parametrize(
    ("phone", "request_text", "language"),
    [
        ("77013330011", "СТОП", "ru"),
        ("77013330012", "Отпишитесь, пожалуйста!", "ru"),
        ("77013330013", "не пишите мне 😡", "ru"),
        ("77013330014", "Больше не пишите.", "ru"),
        ("77013330015", "Хватит писать!!!", "ru"),
        ("77013330016", "Удалите мой номер", "ru"),
        ("77013330017", "Жазбаңыз!", "kk"),
        ("77013330018", "тоқтатыңыз", "kk"),
        ("77013330019", "Хабарлама жібермеңіз 🙏", "kk"),
    ],
)
async def test_a_stop_request_gets_one_confirmation_and_no_touch_ever(
    system, customer, phone, request_text, language
):
    await customer.write(phone, "Сколько стоит тариф Бизнес?", business_name="ТОО Стоп")
    await customer.wait_sent_to(phone, 1)
    # A day of silence: touch 1 fell due at 10:00 today, inside working hours, so it goes now.
    await move_conversation_back(system.agent.database_url, phone, hours=25)
    await customer.wait_sent_to(phone, 2)

    await customer.write(phone, request_text)

    confirmation = (await customer.wait_sent_to(phone, 3))[2]
    assert confirmation["body"] == STOP_CONFIRMATION[language]
    for _ in range(50):
        [chain] = await follow_ups_of(system.agent.database_url, phone)
        if chain["is_completed"]:
            break
        await asyncio.sleep(0.2)
    assert (chain["is_completed"], chain["stop_reason"]) == (True, "opted_out")
    # Its next touch made due, and a long silence after the confirmation: still nothing more, no new chain.
    made_due = "UPDATE follow_ups SET next_touch_at = $2 WHERE id = $1"
    await fetch(system.agent.database_url, made_due, chain["id"], system.now())
    await move_conversation_back(system.agent.database_url, phone, hours=48)
    await settle(customer, phone, 3)
    assert len(await follow_ups_of(system.agent.database_url, phone, wait_seconds=0)) == 1


async def test_the_eleventh_bot_message_of_the_day_is_not_sent(system, customer):
    phone = "77013330021"
    # Each question its own price line, so no two replies are alike (alike replies are a bot loop).
    questions = [
        f"Сколько стоит {thing}?"
        for thing in (
            "тариф Старт",
            "тариф Бизнес",
            "тариф Профи",
            "тариф Корпоративный",
            "дополнительный пользователь",
            "дополнительный склад",
            "интеграция с Kaspi.kz для тарифа Старт",
            "внедрение под ключ для Профи",
            "перенос данных из 1С",
            "выездное обучение сотрудников в Алматы",
            "внедрение под ключ для Старт",
        )
    ]
    for n, question in enumerate(questions, start=1):
        await customer.write(phone, question, business_name="ТОО Болтун")
        if n <= 10:
            await customer.wait_sent_to(phone, n)
        await asyncio.sleep(3)  # a person's pace, slower than LOOP_REPLY_SECONDS

    await settle(customer, phone, 10)
    contact = await contact_row(system, phone)
    assert contact["pause_reason"] == "send_budget"


async def test_a_hundred_sends_go_out_at_the_configured_rate_none_lost(system, customer):
    gateway = httpx.AsyncClient(base_url=system.gateway.url, headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    phones = [f"7701444{n:04d}" for n in range(100)]
    async with gateway:
        for phone in phones:
            answer = await gateway.post(
                "/test/send-message", json={"phone_number": phone, "message_text": "Акция!"}
            )
            assert answer.status_code == 202

    deadline = time.monotonic() + 60
    sent: list[dict] = []
    while time.monotonic() < deadline and len(sent) < 100:
        await asyncio.sleep(1)
        sent = [
            m
            for m in (await customer.http.get("/sandbox/sent")).json()["messages"]
            if m["recipient"] in phones
        ]
    assert sorted(m["recipient"] for m in sent) == phones  # each exactly once
    first, last = min(m["time"] for m in sent), max(m["time"] for m in sent)
    assert last - first >= 99 * 60 / SENDS_PER_MINUTE - 1  # spread, not a burst (times are whole seconds)


async def test_an_auto_responder_chat_stops_by_itself(system, customer):
    phone = "77013330031"
    await customer.http.post(
        "/sandbox/autoresponders",
        json={"phone": phone, "text": "Спасибо за обращение! Ответим позже.", "delay_ms": 100},
    )
    await customer.write(phone, "Здравствуйте, сколько стоит тариф Старт?", business_name="ТОО Робот")

    await asyncio.sleep(15)
    chat = (await customer.http.get(f"/sandbox/chats/{phone}")).json()["messages"]
    bot_messages = [m for m in chat if m["is_me"]]
    assert 1 <= len(bot_messages) <= 4
    assert (await contact_row(system, phone))["pause_reason"] == "loop_suspected"
    paused = [
        m for m in await customer.sent_to(AIGERIM) + await customer.sent_to(DANIYAR) if phone in m["body"]
    ]
    assert any(m["body"].startswith("⏸ Бот остановился в чате") for m in paused)


async def test_two_managers_take_two_calls_in_one_slot_a_third_lead_gets_another_and_each_manager_hears(
    system, customer
):
    phones = ("77013330041", "77013330042", "77013330043")
    for phone in phones:
        await customer.write(
            phone, "Нужен учёт на 2 склада. Давайте созвонимся завтра в 15:00", business_name="ТОО Три"
        )
        await customer.wait_sent_to(phone, 1)

    replies = [(await customer.sent_to(phone))[0]["body"] for phone in phones]
    managers = {"Айгерим": AIGERIM, "Данияр": DANIYAR}
    named = [name for reply in replies[:2] for name in managers if f"Наш менеджер {name}" in reply]
    assert sorted(named) == ["Айгерим", "Данияр"]
    assert replies[2].startswith("К сожалению, это время уже занято. Могу предложить 09.12.2026 в 15:30")
    for name, phone in zip(named, phones[:2], strict=True):
        notes = [m["body"] for m in await customer.wait_sent_to(managers[name], 1) if phone in m["body"]]
        [note] = [n for n in notes if n.startswith("📞 Новый созвон: 09.12.2026 в 15:00")]
        assert f"https://wa.me/{phone}" in note and "Масштаб: 2 склада" in note


async def notes_about(customer, phone: str, kind: str, seconds: float = 30) -> list[str]:
    """The managers' notifications of `kind` (their first character) about `phone`, once there is one: a
    notification goes out after the client's reply, and may wait its turn under the send rate."""
    deadline = time.monotonic() + seconds
    while True:
        notes = [m["body"] for m in await customer.sent_to(AIGERIM) + await customer.sent_to(DANIYAR)]
        found = [n for n in notes if phone in n and n.startswith(kind)]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_a_question_the_knowledge_base_cannot_answer_goes_to_a_manager(system, customer):
    phone = "77013330051"
    await customer.write(phone, "Франшиза у вас есть?", business_name="ТОО Вопрос")

    [reply] = await customer.wait_sent_to(phone, 1)

    assert reply["body"] == "Хороший вопрос! Уточню у менеджера — он напишет вам в течение часа 😊"
    [question] = await notes_about(customer, phone, "❓")
    assert "«Франшиза у вас есть?»" in question


async def test_reminders_fire_once_at_their_moment_not_for_a_cancelled_call_not_again_after_a_restart(
    system, customer
):
    kept, cancelled = "77013330061", "77013330062"
    for phone, when in ((kept, "в 13:00"), (cancelled, "в 13:30")):
        await customer.write(phone, f"Давайте созвонимся сегодня {when}", business_name="ТОО Напомни")
        await customer.wait_sent_to(phone, 1)
    rows = await fetch(
        system.agent.database_url,
        "SELECT s.id, c.phone_number FROM scheduled_calls s JOIN contacts c ON c.id = s.contact_id "
        "WHERE c.phone_number = ANY($1::text[]) AND s.status = 'scheduled'",
        [kept, cancelled],
    )
    ids = {row["phone_number"]: row["id"] for row in rows}
    async with agent_api(system) as api:
        assert (await api.post(f"/scheduled-calls/{ids[cancelled]}/cancel")).status_code == 200
    await customer.wait_sent_to(cancelled, 2)  # "Созвон ... отменён"

    # As if the clock had reached an hour before both calls.
    await fetch(
        system.agent.database_url,
        "UPDATE scheduled_calls SET reminder_due_at = $1 WHERE id = ANY($2::int[])",
        system.now(),
        list(ids.values()),
    )
    reminder = (await customer.wait_sent_to(kept, 2))[1]
    assert reminder["body"].startswith("Напоминаем: 08.12.2026 в 13:00 (время Астаны)")

    system.agent.restart()
    await settle(customer, kept, 2)
    await settle(customer, cancelled, 2, seconds=0)
    manager_reminders = [
        m
        for m in await customer.sent_to(AIGERIM) + await customer.sent_to(DANIYAR)
        if m["body"].startswith("⏰") and (kept in m["body"] or cancelled in m["body"])
    ]
    assert len(manager_reminders) == 1 and kept in manager_reminders[0]["body"]


async def crm_received(
    customer, types: list[str], phones: tuple[str, ...], seconds: float = 90
) -> list[dict]:
    """The events the receiver took for `phones`, once it has every one of `types` (in any order)."""
    deadline = time.monotonic() + seconds
    while True:
        events = (await customer.http.get("/sandbox/crm/events")).json()["events"]
        ours = [e for e in events if json.loads(e["body"])["contact"]["phone"].lstrip("+") in phones]
        got = sorted(json.loads(e["body"])["type"] for e in ours)
        if got == sorted(types):
            return ours
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.5)


async def test_a_crm_receiver_down_for_a_while_gets_each_event_once_and_bitrix24_one_lead_per_client(
    system, customer
):
    booker, asker = "77013330071", "77013330072"
    await customer.fault(endpoint="crm_events", status=503, count=2)  # the receiver is down at first
    await customer.write(booker, "Давайте созвонимся завтра в 16:00", business_name="ТОО Лид")
    await customer.write(asker, "Здравствуйте, сколько стоит тариф Старт?", business_name="ТОО Лид-2")
    await customer.wait_sent_to(booker, 1)
    await customer.wait_sent_to(asker, 1)
    await customer.write(asker, "А сколько пользователей в нём?")  # a second turn: no second lead
    await customer.wait_sent_to(asker, 2)

    types = ["contact.classified", "contact.classified", "call.booked"]
    events = await crm_received(customer, types, (booker, asker))
    await asyncio.sleep(3)  # nothing comes twice, even after the retries
    assert len(await crm_received(customer, types, (booker, asker), seconds=0)) == 3

    bodies = [json.loads(e["body"]) for e in events]
    assert len({b["event_id"] for b in bodies}) == 3
    for event in events:
        signed = hmac.new(CRM_SECRET.encode(), event["body"].encode(), hashlib.sha256).hexdigest()
        assert event["headers"]["x-signature"] == f"sha256={signed}"
    [booked] = [b for b in bodies if b["type"] == "call.booked"]
    assert booked["data"]["scheduled_at"] == "2026-12-09T16:00:00+05:00"
    assert booked["data"]["manager"]["phone"] in (f"+{AIGERIM}", f"+{DANIYAR}")

    portal = (await customer.http.get("/sandbox/bitrix24")).json()
    leads = {
        phone: [lead for lead in portal["leads"] if lead["PHONE"][0]["VALUE"] == f"+{phone}"]
        for phone in (booker, asker)
    }
    assert [len(found) for found in leads.values()] == [1, 1]
    [call] = [a for a in portal["activities"] if a["OWNER_ID"] == leads[booker][0]["ID"]]
    assert call["START_TIME"] == "2026-12-09T16:00:00+05:00"
