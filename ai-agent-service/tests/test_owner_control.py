"""The owner stays in charge: a person writing from the business phone pauses the bot in that chat until
OPERATOR_PAUSE_HOURS pass without them; an operator pauses and resumes by API; a stop request gets one
confirmation from code and is never chased; the daily send budget and the loop breaker keep the bot quiet."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Contact, Decision, FollowUp, Message
from services.follow_up_arming import arm_follow_ups
from services.follow_up_chain import TOUCH_SPACING
from services.follow_up_scheduler import send_due_touches
from services.message_consumer import Outcome
from services.opt_out import CONFIRMATION, stop_request_language
from tests.conftest import ADMIN_KEY, WEDNESDAY_3PM, fixed_clock, handle, incoming
from tests.test_follow_up_scheduler import astana, at_moment, conversation, price_talk

PHONE = "77015550101"
AUTH = {"X-API-Key": ADMIN_KEY}


def operator(text: str, *, phone: str = PHONE, at: datetime = WEDNESDAY_3PM) -> dict:
    return incoming(text, phone=phone, at=at) | {"sender": "operator"}


def client(text: str, *, phone: str = PHONE, at: datetime = WEDNESDAY_3PM) -> dict:
    return incoming(text, phone=phone, at=at, business="ТОО Альфа")


async def contact_of(db, phone: str = PHONE) -> Contact:
    async with db() as session:
        return await session.scalar(select(Contact).where(Contact.phone_number == phone))


async def decisions(db) -> list[str]:
    async with db() as session:
        return [d.kind for d in await session.scalars(select(Decision).order_by(Decision.id))]


async def test_a_person_writing_from_the_business_phone_pauses_the_bot_until_the_pause_runs_out(
    agent, db, gemini, queues
):
    assert await handle(
        client("Сколько стоит тариф Старт?", at=WEDNESDAY_3PM - timedelta(minutes=5)), agent
    ) == (Outcome.REPLIED)
    assert await handle(operator("Добрый день! Это Айгерим, менеджер. Пришлю КП сегодня."), agent) == (
        Outcome.OPERATOR
    )
    later = WEDNESDAY_3PM + timedelta(hours=3)
    after_three_hours = dataclasses.replace(agent, clock=fixed_clock(later))
    assert await handle(client("Спасибо, жду", at=later), after_three_hours) is Outcome.PAUSED
    contact = await contact_of(db)
    assert (contact.pause_reason, contact.paused_until) == (
        "operator_replied",
        WEDNESDAY_3PM + timedelta(hours=12),
    )

    resumed_at = WEDNESDAY_3PM + timedelta(hours=13)
    after_the_pause = dataclasses.replace(agent, clock=fixed_clock(resumed_at))
    assert await handle(client("А интеграция с 1С есть?", at=resumed_at), after_the_pause) is Outcome.REPLIED

    replies = [body["message_text"] for body in await queues.outgoing()]
    assert len(replies) == 2  # the first answer and the one after the pause; nothing while the person led
    last_prompt = gemini.prompts_of("sales")[-1]
    assert "Менеджер: Добрый день! Это Айгерим, менеджер. Пришлю КП сегодня." in last_prompt
    new_message = last_prompt.split("НОВОЕ СООБЩЕНИЕ КЛИЕНТА:")[1].split("ТЕКУЩАЯ ДАТА")[0]
    assert "А интеграция с 1С есть?" in new_message and "Спасибо, жду" not in new_message
    assert await decisions(db) == ["replied", "paused", "replied"]


async def test_an_operator_message_is_stored_once_and_never_published(agent, db, queues):
    body = operator("Я на связи, пишите сюда")

    assert await handle(body, agent) is Outcome.OPERATOR
    assert await handle(body, agent) is Outcome.DUPLICATE

    async with db() as session:
        [stored] = (await session.scalars(select(Message).where(Message.sent_by == "operator"))).all()
    assert stored.is_from_bot and stored.published_at is not None
    assert await queues.outgoing() == []


async def test_pause_and_resume_by_api(api, agent, db, gemini, queues):
    await handle(client("Сколько стоит тариф Старт?"), agent)

    paused = (await api.post(f"/contacts/{PHONE}/pause", json={"hours": 2}, headers=AUTH)).json()
    assert paused["pause_reason"] == "manual"
    assert datetime.fromisoformat(paused["paused_until"]) == WEDNESDAY_3PM + timedelta(hours=2)
    assert await handle(client("Алло?"), agent) is Outcome.PAUSED

    forever = (await api.post(f"/contacts/{PHONE}/pause", headers=AUTH)).json()
    assert (forever["pause_reason"], forever["paused_until"]) == ("manual", None)

    resumed = (await api.post(f"/contacts/{PHONE}/resume", headers=AUTH)).json()
    assert (resumed["pause_reason"], resumed["paused_until"]) == (None, None)
    assert await handle(client("А сколько стоит тариф Бизнес?"), agent) is Outcome.REPLIED
    shown = (await api.get(f"/contacts/{PHONE}", headers=AUTH)).json()
    assert shown["pause_reason"] is None and shown["opted_out_at"] is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("СТОП", "ru"),
        ("стоп!!! 🛑", "ru"),
        ("Отпишитесь, пожалуйста", "ru"),
        ("Не пишите мне больше.", "ru"),
        ("Больше не пишите!", "ru"),
        ("Хватит писать 😡", "ru"),
        ("Удалите мой номер", "ru"),
        ("Жазбаңыз!", "kk"),
        ("тоқтатыңыз", "kk"),
        ("Хабарлама жібермеңіз 🙏", "kk"),
    ],
)
def test_stop_requests_are_found_in_russian_and_kazakh(text, language):
    assert stop_request_language(text) == language


@pytest.mark.parametrize(
    "text", ["Стопка бумаги нужна", "Стоп, а сколько стоит тариф?", "Остановка рядом?", ""]
)
def test_what_merely_contains_stop_is_no_stop_request(text):
    assert stop_request_language(text) is None


async def test_a_stop_request_gets_one_confirmation_from_code_and_is_never_chased(agent, db, gemini, queues):
    silent_since = astana(23, 14)
    await conversation(db, *price_talk(silent_since), phone=PHONE)
    async with db.begin() as session:
        await arm_follow_ups(
            session, intervals=(24, 72, 168, 336, 720), hours=agent.hours, now=astana(24, 15)
        )

    assert await handle(client("Больше не пишите мне!"), agent) is Outcome.OPTED_OUT

    [confirmation] = await queues.outgoing()
    assert confirmation["message_text"] == CONFIRMATION["ru"]
    assert gemini.prompts_of("sales") == []  # no model wrote it
    async with db() as session:
        [chain] = (await session.scalars(select(FollowUp))).all()
    assert (chain.is_completed, chain.stop_reason) == (True, "opted_out")
    assert (await contact_of(db)).opted_out_at == WEDNESDAY_3PM

    # A real question later is answered, but the silence after it is never chased.
    assert await handle(client("А пробный период есть?"), agent) is Outcome.REPLIED
    async with db.begin() as session:
        armed = await arm_follow_ups(session, intervals=(24,), hours=agent.hours, now=astana(30, 15))
    assert armed == []


async def test_the_models_opt_out_signal_is_enough(agent, db, gemini, queues):
    gemini.sales = lambda prompt: {
        "reply": "Понял!",
        "stance": "no",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
        "opt_out": True,
    }

    assert await handle(client("Прошу исключить меня из вашего списка"), agent) is Outcome.OPTED_OUT

    [confirmation] = await queues.outgoing()
    assert confirmation["message_text"] == CONFIRMATION["ru"]


async def test_a_kazakh_stop_request_is_confirmed_in_kazakh(agent, queues):
    await handle(client("Маған жазбаңыз!"), agent)

    [confirmation] = await queues.outgoing()
    assert confirmation["message_text"] == CONFIRMATION["kk"]


async def test_past_the_daily_budget_the_bot_keeps_quiet_until_midnight(agent, db, gemini, queues):
    day = dataclasses.replace(agent, limits=dataclasses.replace(agent.limits, messages_per_day=3))
    gemini.sales = lambda prompt: {
        "reply": f"Ответ номер {len(gemini.prompts_of('sales'))}: "
        + "подробно " * len(gemini.prompts_of("sales")),
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }
    questions = ["Сколько стоит Старт?", "А Бизнес?", "А Профи?", "А внедрение?"]
    outcomes = []
    for n, text in enumerate(questions):
        # Minutes apart: a client, not a bot answering within seconds.
        outcomes.append(await handle(client(text, at=WEDNESDAY_3PM + timedelta(minutes=5 * n)), day))

    assert outcomes == [Outcome.REPLIED] * 3 + [Outcome.SILENCED]
    assert len(await queues.outgoing()) == 3
    contact = await contact_of(db)
    midnight = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # 00:00 on Thursday in Astana
    assert (contact.pause_reason, contact.paused_until) == ("send_budget", midnight)

    next_day = dataclasses.replace(day, clock=fixed_clock(midnight + timedelta(hours=5)))
    assert await handle(client("Доброе утро!", at=midnight + timedelta(hours=5)), next_day) is Outcome.REPLIED


async def test_an_auto_responder_answering_within_seconds_stops_the_bot_by_itself(agent, db, gemini, queues):
    answers = iter(["Добрый день!", "Чем помочь?", "Расскажите подробнее.", "Слушаю вас.", "Да?", "Ещё?"])
    gemini.sales = lambda prompt: {
        "reply": next(answers),
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }
    await handle(
        client("Интересует ваш сервис, сколько стоит?", at=WEDNESDAY_3PM - timedelta(minutes=1)), agent
    )
    outcomes = []
    for n in range(1, 6):
        # The other side's bot: a new automatic text a second after each of ours (ours a second later).
        auto = client(f"Автоответ №{n}: мы ответим позже", at=WEDNESDAY_3PM + timedelta(seconds=2 * n - 1))
        at_that_moment = dataclasses.replace(
            agent, clock=fixed_clock(WEDNESDAY_3PM + timedelta(seconds=2 * n))
        )
        outcomes.append(await handle(auto, at_that_moment))

    assert outcomes == [Outcome.REPLIED, Outcome.REPLIED, Outcome.SILENCED, Outcome.PAUSED, Outcome.PAUSED]
    assert len(await queues.outgoing()) == 3  # at most four bot messages in such a chat
    assert (await contact_of(db)).pause_reason == "loop_suspected"


async def test_the_same_text_three_times_is_a_loop(agent, db, gemini, queues):
    for n in range(4):
        await handle(client("Ваше сообщение получено", at=WEDNESDAY_3PM + timedelta(minutes=20 * n)), agent)

    assert "loop_suspected" in await decisions(db)
    assert (await contact_of(db)).pause_reason == "loop_suspected"


async def test_touches_due_at_once_are_spread_over_the_working_day(follow_ups, db, queues):
    friday_evening = astana(27, 17)
    for n in range(5):
        await conversation(db, *price_talk(friday_evening), phone=f"7701555000{n}")
    monday_ten = astana(30, 10)
    async with db.begin() as session:
        await arm_follow_ups(session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=monday_ten)

    sent = await send_due_touches(at_moment(follow_ups, monday_ten))

    assert len(sent) == 1
    async with db() as session:
        due = sorted(c.next_touch_at for c in await session.scalars(select(FollowUp)) if c.touch_number == 1)
    assert due == [monday_ten + n * TOUCH_SPACING for n in range(1, 5)]


async def test_no_touch_goes_to_a_paused_or_opted_out_chat(follow_ups, db, queues):
    for phone in ("77015550201", "77015550202"):
        await conversation(db, *price_talk(astana(24, 14)), phone=phone)
    async with db.begin() as session:
        await arm_follow_ups(
            session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=astana(25, 15)
        )
        paused = await session.scalar(select(Contact).where(Contact.phone_number == "77015550201"))
        paused.pause_reason = "manual"
        opted = await session.scalar(select(Contact).where(Contact.phone_number == "77015550202"))
        opted.opted_out_at = astana(25, 15)

    assert await send_due_touches(at_moment(follow_ups, astana(25, 17))) == []
    assert await queues.outgoing() == []
