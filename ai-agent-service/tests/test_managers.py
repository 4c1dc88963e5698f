"""Managers hear about it: calls go to a free manager in turn (a slot is full when every manager has a call
then) and the confirmation names them; the manager gets the booked call with a summary, a question the
knowledge base could not answer, a chat the bot left; reminders and the digest go out once; an operator
cancels or moves a call and the client is told by code."""

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from models import Contact, ScheduledCall
from service_kit.managers import Manager
from services.call_calendar import CallPolicy
from services.reminders import CalendarDeps, send_digest, send_due_reminders
from tests.conftest import ADMIN_KEY, WEDNESDAY_3PM, fixed_clock, handle, incoming
from utils.timezone_helper import ASTANA

AIGERIM = Manager("Айгерим", "77019990001")
DANIYAR = Manager("Данияр", "77019990002")
TWO = CallPolicy(managers=(AIGERIM, DANIYAR), reminder=timedelta(minutes=60))
SUMMARY = {"wants": "Складской учёт для 2 складов", "size": "2 склада, 5 пользователей", "objections": "цена"}
AUTH = {"X-API-Key": ADMIN_KEY}


def sales(reply="Отлично!", *, time=None, confirmed=False, gap=False, agreed=True) -> dict:
    return {
        "reply": reply,
        "stance": "yes",
        "agreed_to_call": agreed,
        "proposed_call_time": time,
        "confirmed_call_time": confirmed,
        "knowledge_gap": gap,
    }


def answers(gemini, sales_answer: dict) -> None:
    """Gemini's sales answer, and its summary when the manager's notification asks for one."""
    gemini.sales = lambda prompt: SUMMARY if "подготовиться к созвону" in prompt else sales_answer


def client(text: str, phone: str, at: datetime = WEDNESDAY_3PM - timedelta(minutes=1)) -> dict:
    return incoming(text, phone=phone, at=at, business="ТОО Склад")


def notifications(bodies: list[dict]) -> list[dict]:
    return [b for b in bodies if b.get("kind") == "notification"]


def to_clients(bodies: list[dict]) -> list[dict]:
    return [b for b in bodies if b.get("kind") != "notification"]


@pytest.fixture
def with_managers(agent):
    return dataclasses.replace(agent, calls=TWO)


async def test_two_managers_take_two_calls_in_one_slot_and_a_third_lead_is_offered_another(
    with_managers, db, gemini, queues
):
    answers(gemini, sales(time="2026-11-26T11:00", confirmed=True))
    for phone in ("77016660001", "77016660002", "77016660003"):
        await handle(client("Давайте завтра в 11:00", phone), with_managers)

    bodies = await queues.outgoing()
    replies = [b["message_text"] for b in to_clients(bodies)]
    assert (
        replies[0].startswith("Отлично! Записал вас на 26.11.2026 в 11:00")
        and "Наш менеджер Айгерим" in replies[0]
    )
    assert "Наш менеджер Данияр" in replies[1]
    assert replies[2].startswith("К сожалению, это время уже занято. Могу предложить 26.11.2026 в 11:30")
    async with db() as session:
        calls = (await session.scalars(select(ScheduledCall).order_by(ScheduledCall.id))).all()
    assert [(c.manager_name, c.scheduled_at) for c in calls] == [
        ("Айгерим", datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)),
        ("Данияр", datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)),
    ]
    booked = notifications(bodies)
    assert [b["phone_number"] for b in booked] == [AIGERIM.phone, DANIYAR.phone]
    first = booked[0]["message_text"]
    assert first.startswith("📞 Новый созвон: 26.11.2026 в 11:00 (время Астаны)")
    assert "https://wa.me/77016660001" in first and "ТОО Склад" in first
    assert "Что хочет: Складской учёт для 2 складов" in first and "Возражения: цена" in first
    assert all(b["sent_by"] == "notification" for b in booked)


async def test_when_gemini_gives_no_summary_the_manager_gets_the_clients_last_words(
    with_managers, gemini, queues
):
    gemini.sales = lambda prompt: (
        {"nonsense": True}
        if "подготовиться к созвону" in prompt
        else sales(time="2026-11-26T12:00", confirmed=True)
    )

    await handle(client("Давайте завтра в 12:00, нам нужен учёт на 3 склада", "77016660004"), with_managers)

    [note] = notifications(await queues.outgoing())
    assert (
        "Последние сообщения клиента:\n— Давайте завтра в 12:00, нам нужен учёт на 3 склада"
        in note["message_text"]
    )


@pytest.mark.parametrize(
    ("moment", "promise"),
    [
        (WEDNESDAY_3PM, "в течение часа"),  # Wednesday 15:00 in Astana
        (datetime(2026, 11, 25, 14, 0, tzinfo=UTC), "завтра с 10:00"),  # Wednesday 19:00
        (datetime(2026, 11, 27, 14, 0, tzinfo=UTC), "30.11 с 10:00"),  # Friday 19:00: Monday morning
    ],
)
async def test_a_question_the_knowledge_base_cannot_answer_goes_to_a_manager_with_the_promise_for_the_hour(
    with_managers, gemini, queues, moment, promise
):
    answers(gemini, sales("Думаю, да.", gap=True, agreed=False))
    at_moment = dataclasses.replace(with_managers, clock=fixed_clock(moment))

    await handle(client("А у вас есть интеграция с SAP?", "77016660005", at=moment), at_moment)

    bodies = await queues.outgoing()
    [reply] = to_clients(bodies)
    assert reply["message_text"] == f"Хороший вопрос! Уточню у менеджера — он напишет вам {promise} 😊"
    [question] = notifications(bodies)
    assert question["message_text"].startswith("❓ Вопрос, на который бот не нашёл ответа в базе знаний")
    assert "«А у вас есть интеграция с SAP?»" in question["message_text"]
    assert f"Клиенту обещан ответ {promise}." in question["message_text"]


async def test_an_invented_price_becomes_a_question_for_the_manager(with_managers, gemini, queues):
    answers(gemini, sales("Тариф Старт стоит 4 500 тенге", agreed=False))

    await handle(client("Сколько стоит тариф Старт?", "77016660006"), with_managers)

    bodies = await queues.outgoing()
    [reply] = to_clients(bodies)
    assert reply["message_text"].startswith("Точную стоимость для вашего случая подтвердит наш менеджер — он")
    assert len(notifications(bodies)) == 1


async def test_without_managers_nothing_is_notified(agent, gemini, queues):
    answers(gemini, sales(time="2026-11-26T11:00", confirmed=True))

    await handle(client("Давайте завтра в 11:00", "77016660007"), agent)

    bodies = await queues.outgoing()
    assert notifications(bodies) == []
    assert "Наш менеджер свяжется с вами" in bodies[0]["message_text"]


async def booked(
    db, phone: str, at: datetime, *, reminder_due: bool = True, manager=AIGERIM
) -> ScheduledCall:
    async with db.begin() as session:
        contact = Contact(phone_number=phone, name="Ерлан", business_name="ИП Ерлан", is_client=True)
        session.add(contact)
        await session.flush()
        call = ScheduledCall(
            contact_id=contact.id,
            scheduled_at=at,
            manager_name=manager.name,
            manager_phone=manager.phone,
            reminder_due_at=at - timedelta(minutes=60) if reminder_due else None,
        )
        session.add(call)
    return call


def calendar(agent, moment: datetime) -> CalendarDeps:
    return CalendarDeps(
        sessions=agent.sessions,
        publisher=agent.publisher,
        outbox=agent.outbox,
        notification_outbox=agent.notification_outbox,
        hours=agent.hours,
        policy=TWO,
        digest_time=datetime(2026, 1, 1, 9, 30).time(),
        clock=fixed_clock(moment),
    )


async def test_a_call_is_reminded_of_once_to_the_client_and_its_manager(agent, db, queues):
    eleven = datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    await booked(db, "77016660008", eleven)
    await booked(db, "77016660009", eleven + timedelta(hours=1), reminder_due=False)  # booked too close

    assert await send_due_reminders(calendar(agent, eleven - timedelta(minutes=61))) == 0
    assert await send_due_reminders(calendar(agent, eleven - timedelta(minutes=60))) == 1
    assert await send_due_reminders(calendar(agent, eleven - timedelta(minutes=30))) == 0  # once

    bodies = await queues.outgoing()
    [to_client] = to_clients(bodies)
    assert to_client["phone_number"] == "77016660008" and to_client["sent_by"] == "reminder"
    assert to_client["message_text"].startswith("Напоминаем: 26.11.2026 в 11:00 (время Астаны)")
    assert "с нашим менеджером Айгерим" in to_client["message_text"]
    [to_manager] = notifications(bodies)
    assert (
        to_manager["phone_number"] == AIGERIM.phone and "⏰ Через 60 мин созвон" in to_manager["message_text"]
    )


async def test_a_cancelled_call_is_not_reminded_of(agent, db, queues):
    eleven = datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    call = await booked(db, "77016660010", eleven)
    async with db.begin() as session:
        (await session.get_one(ScheduledCall, call.id)).status = "cancelled"

    assert await send_due_reminders(calendar(agent, eleven - timedelta(minutes=59))) == 0
    assert await queues.outgoing() == []


async def test_the_digest_goes_to_each_manager_once_on_working_mornings(agent, db, queues):
    thursday = datetime(2026, 11, 26, 9, 29, tzinfo=ASTANA)
    await booked(db, "77016660011", datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA))

    assert await send_digest(calendar(agent, thursday)) == 0
    assert await send_digest(calendar(agent, thursday + timedelta(minutes=1))) == 2
    assert await send_digest(calendar(agent, thursday + timedelta(minutes=31))) == 0
    assert await send_digest(calendar(agent, datetime(2026, 11, 28, 9, 30, tzinfo=ASTANA))) == 0  # Saturday

    digests = {b["phone_number"]: b["message_text"] for b in notifications(await queues.outgoing())}
    assert digests[AIGERIM.phone].startswith("☀️ Доброе утро, Айгерим! Сводка на 26.11.2026.")
    assert (
        "Ваши созвоны сегодня: 1:\n• 11:00 — Ерлан, ИП Ерлан — https://wa.me/77016660011"
        in digests[AIGERIM.phone]
    )
    assert "Ваши созвоны сегодня: 0." in digests[DANIYAR.phone]


@pytest.fixture
async def api_with_managers(settings, db, broker, gemini, queues):
    app = create_app(settings.model_copy(update={"MANAGERS": TWO.managers}), clock=fixed_clock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as client:
            yield client


async def test_an_operator_cancels_and_moves_calls_and_the_client_is_told(api_with_managers, db, queues):
    api = api_with_managers
    eleven = datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    first = await booked(db, "77016660012", eleven)
    second = await booked(db, "77016660013", eleven + timedelta(hours=1))

    cancelled = await api.post(
        f"/scheduled-calls/{first.id}/cancel", json={"reason": "менеджер заболел"}, headers=AUTH
    )
    moved = await api.post(
        f"/scheduled-calls/{second.id}/reschedule", json={"scheduled_at": "2026-11-27T15:00"}, headers=AUTH
    )
    refused = await api.post(
        f"/scheduled-calls/{moved.json()['id']}/reschedule",
        json={"scheduled_at": "2026-11-27T20:00"},
        headers=AUTH,
    )
    again = await api.post(f"/scheduled-calls/{first.id}/cancel", headers=AUTH)

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert moved.status_code == 200 and moved.json()["scheduled_at"].startswith("2026-11-27T10:00")
    assert refused.status_code == 409 and "is outside working hours" in refused.json()["detail"]
    assert again.status_code == 409
    bodies = await queues.outgoing()
    told = {b["phone_number"]: b["message_text"] for b in to_clients(bodies)}
    assert told["77016660012"].startswith("Созвон 26.11.2026 в 11:00 (время Астаны) отменён.")
    assert told["77016660013"].startswith("Созвон перенесён на 27.11.2026 в 15:00 (время Астаны).")
    heard = [(b["phone_number"], b["message_text"].split("\n")[0]) for b in notifications(bodies)]
    assert (AIGERIM.phone, "📞 Созвон 26.11.2026 в 11:00 отменён.") in heard
    new_manager = moved.json()["manager_name"]
    by_manager = {"date": "2026-11-27", "manager": new_manager}
    listed = (await api.get("/scheduled-calls", params=by_manager, headers=AUTH)).json()
    assert [c["id"] for c in listed["items"]] == [moved.json()["id"]]


async def test_a_manager_hears_when_the_daily_budget_stops_the_bot_and_that_it_comes_back_tomorrow(
    with_managers, gemini, queues
):
    one_a_day = dataclasses.replace(
        with_managers, limits=dataclasses.replace(with_managers.limits, messages_per_day=1)
    )
    answers(gemini, sales(agreed=False))
    phone = "77016660020"
    await handle(client("Сколько стоит тариф Старт?", phone), one_a_day)
    await handle(client("А тариф Бизнес?", phone, at=WEDNESDAY_3PM + timedelta(minutes=5)), one_a_day)

    [paused] = notifications(await queues.outgoing())
    assert paused["message_text"] == (
        "⏸ Бот остановился в чате: бот отправил в этот чат дневной лимит сообщений.\n"
        "Клиент: Иван, ТОО Склад — https://wa.me/77016660020\n"
        "Ответьте клиенту сами; бот вернётся к чату завтра."
    )
