"""The code, never the model, decides what a client is told about a call: any ISO form of a proposed time
is understood, and a reply naming a time or claiming a booking goes out only for a time the code booked or
offered."""

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from models import Contact, Decision, ScheduledCall
from services.call_booking import ASK_TIME, parse_proposed_time
from services.call_mentions import call_mentions
from tests.conftest import handle, incoming
from utils.timezone_helper import ASTANA, WorkingHours

HOURS = WorkingHours(10, 18, "Asia/Almaty")
QUESTION = ASK_TIME["ru"].format(start=10, end=18)
TODAY = date(2026, 11, 25)  # the tests' fixed clock: Wednesday 15:00 in Astana


def sales(reply: str, *, agreed=True, time: str | None = None, confirmed=False) -> dict:
    return {
        "reply": reply,
        "stance": "yes",
        "agreed_to_call": agreed,
        "proposed_call_time": time,
        "confirmed_call_time": confirmed,
    }


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-12-11T20:00", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
        ("2026-12-11T20:00:00", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
        ("2026-12-11 20:00", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
        ("2026-12-11T20:00+05:00", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
        ("2026-12-11T15:00:00Z", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
        ("2026-12-11T18:00:00+03:00", datetime(2026, 12, 11, 20, 0, tzinfo=ASTANA)),
    ],
)
def test_every_iso_form_is_understood_an_offset_honoured_a_naive_time_is_astana(written, expected):
    parsed = parse_proposed_time(written, HOURS)

    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("written", ["завтра в 11", "11:00", "2026-13-01T10:00", ""])
def test_what_is_not_a_time_is_not_guessed(written):
    assert parse_proposed_time(written, HOURS) is None


@pytest.mark.parametrize(
    ("text", "claims", "times", "dates"),
    [
        ("Записал вас на сегодня в 20:00", True, [(20, 0)], [TODAY]),
        ("Отлично, жду вас 11.12.2026 в 11:30 👍", True, [(11, 30)], [date(2026, 12, 11)]),
        ("До связи в 20:00!", True, [(20, 0)], []),
        ("Назначил созвон на завтра в 11 часов", True, [(11, 0)], [date(2026, 11, 26)]),
        ("Могу предложить созвон 3 декабря в 10:00?", False, [(10, 0)], [date(2026, 12, 3)]),
        ("Наши менеджеры работают с 10:00 до 18:00 по времени Астаны 📞", False, [], []),
        ("Старт — 15 000 ₸ в месяц. Подскажите, для какой задачи?", False, [], []),
        ("Доставка документов до 14:00 каждый день", False, [], []),
        ("Сізді қоңырауға жазып қойдым: 11.12.2026, сағат 11:30 👍", True, [(11, 30)], [date(2026, 12, 11)]),
        ("Ертең сағат 11-де менеджеріміз хабарласады", False, [(11, 0)], [date(2026, 11, 26)]),
        ("Қоңырауды 3 желтоқсанда 10:00-де өткізейік бе?", False, [(10, 0)], [date(2026, 12, 3)]),
        ("Менеджерлеріміз 10:00-ден 18:00-ге дейін жұмыс істейді", False, [], []),
        ("Сізді бүгін 20:00-де күтеміз", True, [(20, 0)], [TODAY]),
    ],
)
def test_what_a_reply_says_about_a_call(text, claims, times, dates):
    mentions = call_mentions(text, TODAY)

    assert mentions.claims_booking is claims
    assert list(mentions.clock_times) == times and list(mentions.dates) == dates


async def reply_to(
    agent, queues, gemini, answer: dict, text="Давайте созвонимся", phone="77011230001"
) -> str:
    gemini.sales = lambda prompt: answer
    await handle(incoming(text, phone=phone, business="ТОО Альфа"), agent)
    [sent] = await queues.outgoing()
    return sent["message_text"]


async def last_decision(db) -> Decision:
    async with db() as session:
        return (await session.scalars(select(Decision).order_by(Decision.id.desc()))).first()


async def calls(db) -> list[ScheduledCall]:
    async with db() as session:
        return list((await session.scalars(select(ScheduledCall).order_by(ScheduledCall.id))).all())


@pytest.mark.parametrize(
    "proposed", ["2026-11-27T20:00", "2026-11-27T20:00:00", "2026-11-27T20:00+05:00", "2026-11-27T15:00Z"]
)
async def test_a_20_oclock_call_in_any_iso_form_gets_the_codes_offer_not_the_models_promise(
    agent, db, gemini, queues, proposed
):
    answer = sales("Записал вас на пятницу в 20:00!", time=proposed, confirmed=True)

    sent = await reply_to(agent, queues, gemini, answer, "Давайте в пятницу в 20:00")

    assert sent.startswith("К сожалению, в это время мы не работаем")
    assert "Могу предложить 30.11.2026 в 10:00" in sent  # Friday 20:00 → Monday morning
    assert await calls(db) == []


async def test_a_time_that_cannot_be_understood_gets_the_codes_question(agent, db, gemini, queues):
    answer = sales("Записал вас на сегодня в 20:00", time="сегодня вечером", confirmed=True)

    sent = await reply_to(agent, queues, gemini, answer)

    assert sent == QUESTION
    decision = await last_decision(db)
    assert decision.kind == "guarded" and "is not a time" in decision.reason
    assert decision.model_text == "Записал вас на сегодня в 20:00"


async def test_an_unconfirmed_time_with_a_booking_claim_gets_the_codes_offer(agent, db, gemini, queues):
    answer = sales("Записал вас на 26.11.2026 в 11:00 👍", time="2026-11-26T11:00", confirmed=False)

    sent = await reply_to(agent, queues, gemini, answer)

    assert sent == "Могу предложить 26.11.2026 в 11:00 (четверг) по времени Астаны. Подходит?"
    assert await calls(db) == []
    assert (await last_decision(db)).kind == "guarded"


async def test_a_free_slot_the_model_only_asks_about_goes_out_as_written(agent, db, gemini, queues):
    text = "Давайте созвонимся 26.11.2026 в 11:00 — вам удобно?"

    sent = await reply_to(agent, queues, gemini, sales(text, time="2026-11-26T11:00"))

    assert sent == text
    assert (await last_decision(db)).kind == "replied"


async def test_a_time_the_code_never_saw_is_not_promised(agent, db, gemini, queues):
    answer = sales("Хорошо, менеджер позвонит вам завтра в 12:30 😊", agreed=False)

    sent = await reply_to(agent, queues, gemini, answer)

    assert sent == QUESTION
    decision = await last_decision(db)
    assert decision.kind == "guarded" and "did not book or offer" in decision.reason


async def test_a_booking_claim_without_a_booking_is_replaced(agent, db, gemini, queues):
    sent = await reply_to(agent, queues, gemini, sales("Готово, записал вас! До связи 👍"))

    assert sent == QUESTION
    assert "claims a booking" in (await last_decision(db)).reason


async def test_a_reminder_of_the_clients_own_booked_call_may_go_out(agent, db, gemini, queues):
    phone = "77011230002"
    async with db.begin() as session:
        contact = Contact(phone_number=phone, is_client=True)
        session.add(contact)
        await session.flush()
        session.add(
            ScheduledCall(contact_id=contact.id, scheduled_at=datetime(2026, 11, 26, 6, 0, tzinfo=UTC))
        )
    text = "Напоминаю: созвон с менеджером 26.11.2026 в 11:00 😊"

    sent = await reply_to(agent, queues, gemini, sales(text, agreed=False), "А когда созвон?", phone)

    assert sent == text


async def test_two_leads_confirming_one_free_slot_at_once_get_one_booking_and_one_other_offer(
    agent, db, gemini, queues
):
    gemini.sales = lambda prompt: sales("Отлично, до завтра!", time="2026-11-26T12:00", confirmed=True)
    bodies = [
        incoming("Да, завтра в 12:00 подходит", phone=phone, business="ТОО Бета")
        for phone in ("77011230003", "77011230004")
    ]

    await asyncio.gather(*(handle(body, agent) for body in bodies))

    texts = sorted(body["message_text"] for body in await queues.outgoing())
    assert texts[0].startswith("К сожалению, это время уже занято. Могу предложить 26.11.2026 в 12:30")
    assert texts[1].startswith("Отлично! Записал вас на 26.11.2026 в 12:00")
    [call] = await calls(db)
    assert call.scheduled_at == datetime(2026, 11, 26, 12, 0, tzinfo=ASTANA)


async def test_working_hours_follow_the_configured_time_zone():
    moscow = WorkingHours(10, 18, "Europe/Moscow")
    ten_in_moscow = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)

    assert moscow.is_working_time(ten_in_moscow)
    assert not HOURS.is_working_time(datetime(2026, 11, 26, 4, 0, tzinfo=UTC))  # 9:00 in Astana
    assert moscow.format(ten_in_moscow) == "2026-11-26 10:00"
    assert moscow.local(ten_in_moscow).tzinfo == ZoneInfo("Europe/Moscow")
