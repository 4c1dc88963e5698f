"""Calls are booked only inside working hours (Mon–Fri 10–18 Astana, not on holidays), one call per slot."""

import asyncio
from datetime import date, datetime, timedelta

import holidays
import pytest
from sqlalchemy import select

from models import Contact, ScheduledCall
from services.ai_sales_agent import SalesAnswer
from services.call_booking import decide_call
from services.call_calendar import CallPolicy, book_call
from tests.conftest import WEDNESDAY_3PM, handle, incoming
from utils.timezone_helper import ASTANA, WorkingHours

HOURS = WorkingHours(10, 18, "Asia/Almaty")


@pytest.fixture
async def contacts(db) -> list[Contact]:
    async with db.begin() as session:
        people = [Contact(phone_number=f"7701000000{n}", name=f"Клиент {n}", is_client=True) for n in (1, 2)]
        session.add_all(people)
    return people


ONE_CALENDAR = CallPolicy(managers=(), reminder=timedelta(minutes=60))


def answer(proposed: str | None, confirmed: bool = True) -> SalesAnswer:
    return SalesAnswer(
        reply="…",
        stance="yes",
        agreed_to_call=True,
        proposed_call_time=proposed,
        confirmed_call_time=confirmed,
    )


async def decide(
    db, contact, proposed: str | None, confirmed: bool = True, policy: CallPolicy = ONE_CALENDAR
):
    async with db.begin() as session:
        return await decide_call(
            session,
            contact,
            answer=answer(proposed, confirmed),
            now=WEDNESDAY_3PM,
            hours=HOURS,
            policy=policy,
            source_message_id="m1",
        )


async def booked_calls(db) -> list[ScheduledCall]:
    async with db() as session:
        return list((await session.scalars(select(ScheduledCall).order_by(ScheduledCall.id))).all())


async def test_an_evening_time_is_answered_with_the_next_morning_slot(db, contacts):
    decision = await decide(db, contacts[0], "2026-11-26T20:00")

    assert decision.booked is None
    assert decision.offered_slot == datetime(2026, 11, 27, 10, 0, tzinfo=ASTANA)
    assert decision.reply.startswith("К сожалению, в это время мы не работаем")
    assert "Могу предложить 27.11.2026 в 10:00" in decision.reply
    assert decision.reply.endswith("по времени Астаны. Подходит?")
    assert await booked_calls(db) == []


async def test_a_saturday_becomes_monday(db, contacts):
    decision = await decide(db, contacts[0], "2026-11-28T11:00")

    assert decision.offered_slot == datetime(2026, 11, 30, 10, 0, tzinfo=ASTANA)
    assert "30.11.2026 в 10:00" in decision.reply


async def test_a_public_holiday_is_skipped(db, contacts):
    assert date(2026, 12, 16) in holidays.country_holidays("KZ")  # Independence Day, a Wednesday

    decision = await decide(db, contacts[0], "2026-12-16T11:00")

    assert decision.offered_slot == datetime(2026, 12, 17, 10, 0, tzinfo=ASTANA)


async def test_a_confirmed_working_time_is_booked_with_a_written_confirmation(db, contacts):
    decision = await decide(db, contacts[0], "2026-11-26T11:00")

    assert decision.reply == (
        "Отлично! Записал вас на 26.11.2026 в 11:00 (время Астаны). "
        "Наш менеджер свяжется с вами по номеру +77010000001. До связи! 👍"
    )
    [call] = await booked_calls(db)
    assert call.contact_id == contacts[0].id and call.status == "scheduled"
    assert call.scheduled_at == datetime(2026, 11, 26, 11, 0, tzinfo=ASTANA)
    assert call.timezone == "Asia/Almaty"


async def test_the_next_client_cannot_take_a_booked_slot(db, contacts):
    await decide(db, contacts[0], "2026-11-26T11:00")

    decision = await decide(db, contacts[1], "2026-11-26T11:00")

    assert decision.booked is None
    assert decision.reply.startswith("К сожалению, это время уже занято")
    assert decision.offered_slot == datetime(2026, 11, 26, 11, 30, tzinfo=ASTANA)
    assert len(await booked_calls(db)) == 1


async def test_an_unconfirmed_time_leaves_the_models_reply(db, contacts):
    decision = await decide(db, contacts[0], "2026-11-26T11:00", confirmed=False)

    assert decision.reply is None and decision.booked is None


async def test_two_simultaneous_bookings_of_one_slot_leave_one_call(db, contacts):
    slot = datetime(2026, 11, 26, 12, 0, tzinfo=ASTANA)

    async def book(contact):
        async with db.begin() as session:
            return await book_call(session, contact, slot, WEDNESDAY_3PM, HOURS, ONE_CALENDAR, "m")

    results = await asyncio.gather(book(contacts[0]), book(contacts[1]))

    assert sorted(result is None for result in results) == [False, True]
    assert len(await booked_calls(db)) == 1


async def test_booking_again_reschedules_the_clients_call(db, contacts):
    await decide(db, contacts[0], "2026-11-26T11:00")
    await decide(db, contacts[0], "2026-11-27T14:00")

    first, second = await booked_calls(db)
    assert (first.status, second.status) == ("moved", "scheduled")


async def test_the_sales_reply_is_replaced_by_the_booking_confirmation(agent, db, contacts, gemini, queues):
    gemini.sales = lambda prompt: {
        "reply": "Отлично, до завтра!",
        "stance": "yes",
        "agreed_to_call": True,
        "proposed_call_time": "2026-11-26T16:30",
        "confirmed_call_time": True,
    }

    await handle(incoming("Давайте завтра в 16:30", phone=contacts[0].phone_number), agent)

    [reply] = await queues.outgoing()
    assert reply["message_text"].startswith("Отлично! Записал вас на 26.11.2026 в 16:30 (время Астаны).")
    assert len(await booked_calls(db)) == 1


async def test_bookings_keep_working_once_postgresql_plans_the_booking_generically(db, contacts):
    # PostgreSQL plans a prepared statement generically from its sixth run on a connection; the booking's
    # ON CONFLICT must still find the slot index then (each booking here moves the client's previous one).
    slots = [datetime(2026, 11, 26, 10, tzinfo=ASTANA) + timedelta(minutes=30 * n) for n in range(8)]
    async with db.begin() as session:
        for slot in slots:
            assert await book_call(session, contacts[0], slot, WEDNESDAY_3PM, HOURS, ONE_CALENDAR, "n")
        taken = await book_call(session, contacts[1], slots[-1], WEDNESDAY_3PM, HOURS, ONE_CALENDAR, "n")

    assert taken is None
    assert [call.status for call in await booked_calls(db)] == ["moved"] * 7 + ["scheduled"]
