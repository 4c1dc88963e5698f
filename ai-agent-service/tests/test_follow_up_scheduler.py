"""The follow-up chain: when it is armed, when touches go out, when it stops, what the gateway receives.
Gemini is respx (GeminiStub); PostgreSQL and RabbitMQ are real; time is a clock the tests set."""

import asyncio
import dataclasses
from datetime import datetime, timedelta

import aio_pika
import httpx
import pytest
from sqlalchemy import func, select, update

from app import create_app
from models import Contact, FollowUp, Message, ScheduledCall
from service_kit.outbox import REPAIR_AFTER, relay
from service_kit.publisher import Publisher
from services.client_stance import keyword_stance
from services.follow_up_arming import arm_follow_ups
from services.follow_up_chain import TOUCH_SPACING
from services.follow_up_scheduler import FollowUpDeps, run_follow_up_scheduler, send_due_touches
from services.gemini_client import GeminiRetries
from tests.conftest import (
    ADMIN_KEY,
    RABBITMQ_URL,
    contract_validator,
    fixed_clock,
    handle,
    incoming,
    make_follow_ups,
    make_llm,
)
from tests.gemini_stub import default_sales, touch_text
from utils.timezone_helper import ASTANA

PHONE = "77012223344"
AUTH = {"X-API-Key": ADMIN_KEY}
GEMINI_DOWN = httpx.Response(
    503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
)


def astana(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ASTANA)


async def conversation(db, *turns, phone: str = PHONE) -> int:
    """A client's conversation: ("client", text, at[, stance]) and ("bot", text, at) turns, all delivered."""
    async with db.begin() as session:
        contact = Contact(phone_number=phone, name="Айгерим", business_name="ТОО Жарык Трейд", is_client=True)
        session.add(contact)
        await session.flush()
        for n, (who, text, at, *stance) in enumerate(turns):
            bot = who == "bot"
            session.add(
                Message(
                    contact_id=contact.id,
                    phone_number=phone,
                    message_id=None if bot else f"WA-{phone}-{n}",
                    message_text=text,
                    is_from_bot=bot,
                    timestamp=at,
                    sent_by="reply" if bot else None,
                    outgoing_id=f"reply-{phone}-{n}" if bot else None,
                    published_at=at if bot else None,
                    answered_at=None if bot else at,
                    stance=stance[0] if stance else None,
                )
            )
    return contact.id


def price_talk(silent_since: datetime, *, client_text: str = "Сколько стоит тариф Старт?", stance=None):
    return (
        ("client", client_text, silent_since - timedelta(minutes=2), stance),
        ("bot", "Тариф Старт — 15 000 ₸ в месяц. Подключим пробный период?", silent_since),
    )


def at_moment(deps: FollowUpDeps, moment: datetime) -> FollowUpDeps:
    return dataclasses.replace(deps, clock=fixed_clock(moment))


async def one_pass(deps: FollowUpDeps, moment: datetime) -> list:
    async with deps.sessions.begin() as session:
        await arm_follow_ups(session, intervals=deps.intervals, hours=deps.hours, now=moment)
    return await send_due_touches(at_moment(deps, moment))


async def chains(db) -> list[FollowUp]:
    async with db() as session:
        return list((await session.scalars(select(FollowUp).order_by(FollowUp.id))).all())


async def touches_stored(db) -> list[Message]:
    async with db() as session:
        query = select(Message).where(Message.sent_by == "follow_up").order_by(Message.id)
        return list((await session.scalars(query)).all())


async def test_a_silent_client_gets_touch_one_and_touch_two_counts_from_the_silence(
    follow_ups, db, queues, gemini
):
    silent_since = astana(25, 14)  # Wednesday
    await conversation(db, *price_talk(silent_since))

    sent = await one_pass(follow_ups, astana(26, 15))  # Thursday, 25 hours later

    [chain] = await chains(db)
    [body] = await queues.outgoing()
    assert list(contract_validator("outgoing_messages").iter_errors(body)) == []
    assert body == {
        "phone_number": PHONE,
        "message_text": "Касание 1: добрый день! 😊 Остались вопросы по СкладПро?",
        "reply_to_message_id": None,
        "mark_as_read": False,
        "outgoing_id": f"follow-up-{chain.id}-1",
        "sent_by": "follow_up",
    }
    [stored] = await touches_stored(db)
    assert (
        stored.is_from_bot and stored.published_at is not None and stored.outgoing_id == body["outgoing_id"]
    )
    assert [s.published for s in sent] == [True]
    assert (chain.reason, chain.silent_since, chain.touch_number) == ("no_response", silent_since, 2)
    assert chain.last_touch_at == astana(26, 15)
    # Silence + 72 h is Saturday 14:00: the touch waits for Monday's working-hours start.
    assert chain.next_touch_at == astana(30, 10)

    [prompt] = [p for p in gemini.prompts if "КАСАНИЕ #1" in p]
    assert "[2026-11-25 14:00] Бот: Тариф Старт — 15 000 ₸ в месяц." in prompt
    assert '"Сколько стоит тариф Старт?"' in prompt
    assert "Клиент не ответил на наше последнее сообщение." in prompt
    assert "Время с последнего контакта: 25 часов" in prompt and "Дата и время: 2026-11-26 15:00" in prompt


async def test_a_touch_due_on_saturday_waits_for_monday_morning(follow_ups, db, queues):
    await conversation(db, *price_talk(astana(27, 11)))  # Friday; touch 1 would be Saturday 11:00

    assert await one_pass(follow_ups, astana(28, 12)) == []
    assert [c.next_touch_at for c in await chains(db)] == [astana(30, 10)]
    assert await one_pass(follow_ups, astana(30, 9, 59)) == []

    [sent] = await one_pass(follow_ups, astana(30, 10))

    assert sent.touch_number == 1 and len(await queues.outgoing()) == 1
    # Silence + 72 h is Monday 11:00, an hour after touch 1: the next one still waits a day.
    assert (await chains(db))[0].next_touch_at == astana(1, 10, month=12)


async def test_a_touch_missed_while_the_service_was_down_waits_for_working_hours(follow_ups, db, queues):
    await conversation(db, *price_talk(astana(25, 14)))
    assert [s.touch_number for s in await one_pass(follow_ups, astana(26, 15))] == [1]
    await set_next_touch(db, astana(27, 17))  # touch 2 due Friday 17:00; the service comes back at 03:00

    assert await one_pass(follow_ups, astana(28, 3)) == []
    assert [c.next_touch_at for c in await chains(db)] == [astana(30, 10)]

    await set_next_touch(db, astana(28, 2, 55))  # due five minutes ago, e.g. moved by an operator
    assert [s.touch_number for s in await one_pass(follow_ups, astana(28, 3))] == [2]
    assert len(await queues.outgoing()) == 2


async def set_next_touch(db, at: datetime) -> None:
    async with db.begin() as session:
        await session.execute(update(FollowUp).values(next_touch_at=at))


async def test_intervals_count_from_the_silence_not_from_the_previous_touch(follow_ups, db):
    await conversation(db, *price_talk(astana(23, 14)))  # Monday

    [late] = await one_pass(follow_ups, astana(25, 11))  # touch 1 (due Tuesday 14:00) goes out a day late

    [chain] = await chains(db)
    assert late.touch_number == 1
    assert chain.next_touch_at == astana(26, 14)  # Monday 14:00 + 72 h, not Wednesday 11:00 + 72 h
    [second] = await one_pass(follow_ups, astana(26, 14))
    assert second.touch_number == 2 and (await chains(db))[0].next_touch_at == astana(30, 14)


@pytest.mark.parametrize(
    ("client_text", "stance", "reason"),
    [
        ("Хорошо, я подумаю", None, "vague_answer"),
        ("Может быть, посмотрим", None, "vague_answer"),
        ("Ок, понял", "undecided", "vague_answer"),
        ("Сколько стоит тариф Старт?", "asking", "no_response"),
    ],
)
async def test_silence_or_a_vague_answer_arms_a_chain(follow_ups, db, client_text, stance, reason):
    await conversation(db, *price_talk(astana(25, 14), client_text=client_text, stance=stance))

    async with db.begin() as session:
        armed = await arm_follow_ups(
            session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=astana(25, 16)
        )

    assert [(c.reason, c.touch_number, c.next_touch_at) for c in armed] == [(reason, 1, astana(26, 14))]


@pytest.mark.parametrize(
    ("client_text", "stance"),
    [
        ("Нет, не интересно", None),
        ("Не надо больше писать", None),
        ("Да, давайте", None),
        ("Согласен", None),
        ("Спасибо, мы уже выбрали другую систему", "no"),
        ("Отлично, жду звонка", "yes"),
    ],
)
async def test_a_clear_yes_or_no_is_never_chased(follow_ups, db, client_text, stance):
    await conversation(db, *price_talk(astana(25, 14), client_text=client_text, stance=stance))

    assert await one_pass(follow_ups, astana(27, 15)) == []
    assert await chains(db) == []


async def test_a_no_stamped_in_the_same_second_as_the_reply_before_it_still_counts(follow_ups, db):
    replied = astana(25, 14, 0) + timedelta(milliseconds=700)
    await conversation(
        db,
        *price_talk(replied),
        # WhatsApp stamps to the second: written 0.3 s after the reply, it carries an earlier time.
        ("client", "Нет, не интересно", astana(25, 14, 0), "no"),
        ("bot", "Понял вас, спасибо за ответ!", replied + timedelta(milliseconds=500)),
    )

    assert await one_pass(follow_ups, astana(26, 15)) == []
    assert await chains(db) == []


async def test_a_burst_ending_in_thanks_keeps_the_no_it_started_with(follow_ups, db):
    await conversation(
        db,
        ("client", "Нет", astana(25, 13, 57), "no"),
        ("client", "спасибо", astana(25, 13, 58)),
        ("bot", "Понял вас! Если понадобится учёт склада — пишите.", astana(25, 14)),
    )

    assert await one_pass(follow_ups, astana(27, 15)) == []
    assert await chains(db) == []


async def test_a_booked_call_is_never_chased(follow_ups, db):
    contact_id = await conversation(db, *price_talk(astana(25, 14), client_text="Ок", stance="asking"))
    async with db.begin() as session:
        session.add(ScheduledCall(contact_id=contact_id, scheduled_at=astana(30, 11)))

    assert await one_pass(follow_ups, astana(27, 15)) == []
    assert await chains(db) == []


async def test_an_active_conversation_is_not_armed(follow_ups, db):
    await conversation(db, *price_talk(astana(25, 14, 55)))
    await conversation(
        db,
        ("bot", "Здравствуйте! Чем помочь?", astana(25, 14)),
        ("client", "Сколько стоит?", astana(25, 14, 58)),  # the bot has not answered yet
        phone="77019998877",
    )

    assert await one_pass(follow_ups, astana(25, 15)) == []
    assert await chains(db) == []


async def test_the_client_answering_stops_the_chain_and_a_new_silence_arms_a_new_one(
    follow_ups, agent, db, queues
):
    await conversation(db, *price_talk(astana(23, 14)))
    await one_pass(follow_ups, astana(24, 14))
    await queues.outgoing()

    # Wednesday 15:00 is the agent's clock: the client answers touch 1 and the bot replies.
    await handle(incoming("А скидка при оплате за год есть?", phone=PHONE, at=astana(25, 14, 50)), agent)

    [stopped] = await chains(db)
    assert (stopped.is_completed, stopped.stop_reason, stopped.stopped_at) == (
        True,
        "client_responded",
        astana(25, 15),
    )
    assert await one_pass(follow_ups, astana(26, 14)) == []  # touch 2's old due time: nothing goes out
    [_, fresh] = await chains(db)
    assert (fresh.silent_since, fresh.next_touch_at, fresh.is_completed) == (
        astana(25, 15),
        astana(26, 15),
        False,
    )
    assert [b["sent_by"] for b in await queues.outgoing()] == ["reply"]


async def test_a_no_during_the_chain_stops_it_for_good(follow_ups, agent, db, gemini, queues):
    await conversation(db, *price_talk(astana(23, 14)))
    await one_pass(follow_ups, astana(24, 14))
    gemini.sales = lambda prompt: (
        touch_text(prompt)
        if "КАСАНИЕ #" in prompt
        else {
            **default_sales(prompt),
            "reply": "Понял вас, больше не беспокоим. Хорошего дня!",
            "stance": "no",
        }
    )

    await handle(incoming("Нет, спасибо, не нужно", phone=PHONE, at=astana(25, 14, 50)), agent)

    assert [c.stop_reason for c in await chains(db)] == ["client_said_no"]
    assert await one_pass(follow_ups, astana(27, 15)) == []  # the bot's goodbye is not chased either
    assert len(await chains(db)) == 1


async def test_a_client_message_the_agent_has_not_handled_yet_stops_the_touch(follow_ups, db, queues):
    contact_id = await conversation(db, *price_talk(astana(23, 14)))
    await one_pass(follow_ups, astana(23, 16))  # armed; touch 1 is due Tuesday 14:00
    async with db.begin() as session:
        session.add(
            Message(
                contact_id=contact_id,
                phone_number=PHONE,
                message_id="WA-late",
                message_text="Да, давайте созвонимся",
                timestamp=astana(24, 13),
            )
        )

    assert await one_pass(follow_ups, astana(24, 14)) == []
    assert [c.stop_reason for c in await chains(db)] == ["client_said_yes"]
    assert await queues.outgoing() == []


async def test_five_touches_complete_the_chain_and_touches_never_rearm_it(follow_ups, db, queues):
    await conversation(db, *price_talk(astana(23, 14)))
    await one_pass(follow_ups, astana(23, 16))

    due_times = []
    for _ in range(5):
        [chain] = await chains(db)
        due_times.append(chain.next_touch_at)
        assert len(await one_pass(follow_ups, chain.next_touch_at)) == 1

    assert due_times == [
        astana(24, 14),
        astana(26, 14),
        astana(30, 14),
        astana(7, 14, month=12),
        astana(23, 14, month=12),
    ]
    [chain] = await chains(db)
    assert (chain.is_completed, chain.stop_reason, chain.stopped_at) == (
        True,
        "completed_5_touches",
        due_times[-1],
    )
    outgoing = await queues.outgoing()
    assert [b["outgoing_id"] for b in outgoing] == [f"follow-up-{chain.id}-{n}" for n in range(1, 6)]
    assert [b["message_text"][:9] for b in outgoing] == [f"Касание {n}" for n in range(1, 6)]
    assert await one_pass(follow_ups, astana(24, 14, month=12)) == []
    assert len(await chains(db)) == 1


async def test_two_concurrent_passes_send_each_touch_once(follow_ups, db, queues):
    for n in range(6):
        await conversation(db, *price_talk(astana(25, 14)), phone=f"7701000000{n}")
    async with db.begin() as session:
        await arm_follow_ups(
            session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=astana(26, 15)
        )

    sent = []
    # Touches due at once go out TOUCH_SPACING apart: pairs of passes at each of those moments.
    for step in range(8):
        moment = at_moment(follow_ups, astana(26, 15) + step * TOUCH_SPACING)
        first, second = await asyncio.gather(send_due_touches(moment), send_due_touches(moment))
        sent += [*first, *second]

    assert len(sent) == 6
    outgoing = await queues.outgoing()
    assert sorted(b["phone_number"] for b in outgoing) == [f"7701000000{n}" for n in range(6)]
    assert len({b["outgoing_id"] for b in outgoing}) == 6


async def test_a_failed_publish_is_left_to_the_outbox_and_never_sent_twice(follow_ups, db, broker, queues):
    await conversation(db, *price_talk(astana(25, 14)))
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    closed = await Publisher.open(connection)
    await connection.close()

    [sent] = await one_pass(dataclasses.replace(follow_ups, publisher=closed), astana(26, 15))

    assert sent.published is False and await queues.outgoing() == []
    [stored] = await touches_stored(db)
    assert stored.published_at is None
    assert await one_pass(follow_ups, astana(26, 15, 1)) == []  # the touch is sent; only its publish is due
    async with db.begin() as session:  # as if the outbox's grace period had passed
        await session.execute(update(Message).values(created_at=func.now() - timedelta(seconds=30)))
    assert await relay(db, broker.publisher, follow_ups.outbox, older_than=REPAIR_AFTER) == 1
    [body] = await queues.outgoing()
    assert body["outgoing_id"] == stored.outgoing_id and body["sent_by"] == "follow_up"


async def test_a_gemini_outage_leaves_the_touch_due_for_the_next_pass(follow_ups, db, gemini, queues):
    await conversation(db, *price_talk(astana(25, 14)))
    gemini.sales = lambda prompt: GEMINI_DOWN

    assert await one_pass(follow_ups, astana(26, 15)) == []
    [chain] = await chains(db)
    assert (chain.touch_number, chain.next_touch_at, chain.is_completed) == (1, astana(26, 14), False)

    gemini.sales = touch_text
    assert [s.touch_number for s in await one_pass(follow_ups, astana(26, 15, 1))] == [1]
    assert len(await queues.outgoing()) == 1


async def test_the_loop_arms_and_sends_on_its_own(follow_ups, db, queues):
    await conversation(db, *price_talk(astana(25, 14)))
    loop = asyncio.create_task(run_follow_up_scheduler(at_moment(follow_ups, astana(26, 15)), interval=0.05))
    try:
        [published] = await queues.wait_for(queues.outgoing_queue.name)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    assert published.message_id == f"follow-up-{(await chains(db))[0].id}-1"


async def test_a_touch_promising_an_invented_discount_is_replaced_before_it_is_sent(
    follow_ups, db, gemini, queues
):
    await conversation(db, *price_talk(astana(25, 14)))
    gemini.sales = lambda prompt: {"message": "Только сегодня скидка 40% на тариф Старт — 9 000 ₸ в месяц!"}

    await one_pass(follow_ups, astana(26, 15))

    [body] = await queues.outgoing()
    assert "40%" not in body["message_text"] and "9 000" not in body["message_text"]
    assert "менеджер" in body["message_text"]
    [stored] = await touches_stored(db)
    assert stored.message_text == body["message_text"]


async def test_the_sandbox_gemini_writes_the_touch_through_the_real_sdk(
    settings, db, broker, queues, sandbox, sandbox_url, knowledge
):
    await conversation(db, *price_talk(astana(25, 14)))
    llm = make_llm(settings, db, base_url=sandbox_url)
    try:
        [sent] = await one_pass(make_follow_ups(settings, db, broker, llm, knowledge), astana(26, 15))
    finally:
        await llm.aclose()

    [body] = await queues.outgoing()
    assert body["message_text"] == sent.message.message_text
    assert body["message_text"].startswith("Добрый день! 😊 Напоминаю о нашем разговоре.")


@pytest.mark.parametrize(
    ("text", "stance"),
    [
        ("Да, подходит", "yes"),
        ("Готова, давайте", "yes"),
        ("Нет, не интересно", "no"),
        ("Пока не готов", "no"),
        ("Да, но я ещё подумаю", "undecided"),
        ("Может быть позже", "undecided"),
        ("Когда будет скидка?", None),  # "да" inside a word is not a yes
        ("Нетбук нам не нужен", None),  # nor is "нет" inside a word a no
    ],
)
def test_the_keyword_rule_reads_the_spec_phrases(text, stance):
    assert keyword_stance(text) == stance


# --- The app: the loop's switch and the operators' API ---------------------------------------------------


@pytest.fixture
async def api_of(settings, db, broker, gemini, queues):
    apps = []

    async def start(**overrides):
        gemini.sales = touch_text
        app = create_app(
            settings.model_copy(update=overrides),
            clock=fixed_clock(astana(26, 15)),
            gemini_retries=GeminiRetries(attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02),
        )
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent.test")
        apps.append((lifespan, client))
        return client

    yield start
    for lifespan, client in apps:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_enable_follow_ups_switches_the_loop(api_of):
    enabled = (await (await api_of()).get("/health")).json()
    disabled = (await (await api_of(ENABLE_FOLLOW_UPS=False)).get("/health")).json()

    assert enabled["workers"]["follow_ups"] == "ok"
    assert "follow_ups" not in disabled["workers"] and disabled["status"] == "ok"


async def test_an_operator_sends_the_due_touch_now(api_of, follow_ups, db, queues):
    await conversation(db, *price_talk(astana(26, 13)))  # silent for 2 hours: touch 1 is due on Friday
    async with db.begin() as session:
        [armed] = await arm_follow_ups(
            session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=astana(26, 15)
        )
    api = await api_of(ENABLE_FOLLOW_UPS=False)

    active = (await api.get("/follow-ups/active", headers=AUTH)).json()
    assert [(f["id"], f["touch_number"], f["reason"]) for f in active["items"]] == [
        (armed.id, 1, "no_response")
    ]
    response = await api.post(f"/follow-ups/{armed.id}/send-now", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert (body["touch_number"], body["published"]) == (1, True)
    assert body["message"]["sent_by"] == "follow_up" and body["message"]["message_text"].startswith(
        "Касание 1"
    )
    assert (body["follow_up"]["touch_number"], body["follow_up"]["is_completed"]) == (2, False)
    [published] = await queues.outgoing()
    assert published["outgoing_id"] == f"follow-up-{armed.id}-1"


async def test_send_now_answers_401_404_and_409(api_of, db):
    contact_id = await conversation(db, *price_talk(astana(25, 14)))
    async with db.begin() as session:
        done = FollowUp(contact_id=contact_id, is_completed=True, stop_reason="client_said_no")
        session.add(done)
    api = await api_of(ENABLE_FOLLOW_UPS=False)

    assert (await api.post(f"/follow-ups/{done.id}/send-now")).status_code == 401
    missing = await api.post("/follow-ups/999/send-now", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["detail"] == "No follow-up with id 999"
    closed = await api.post(f"/follow-ups/{done.id}/send-now", headers=AUTH)
    assert closed.status_code == 409 and "client_said_no" in closed.json()["detail"]


async def test_send_now_after_the_client_wrote_stops_the_chain_instead(api_of, follow_ups, db, queues):
    contact_id = await conversation(db, *price_talk(astana(25, 14)))
    async with db.begin() as session:
        [armed] = await arm_follow_ups(
            session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=astana(25, 16)
        )
        session.add(
            Message(
                contact_id=contact_id,
                phone_number=PHONE,
                message_id="WA-meanwhile",
                message_text="Подскажите, а обучение входит?",
                timestamp=astana(26, 9),
            )
        )
    api = await api_of(ENABLE_FOLLOW_UPS=False)

    response = await api.post(f"/follow-ups/{armed.id}/send-now", headers=AUTH)

    assert response.status_code == 409 and "client_responded" in response.json()["detail"]
    assert [c.stop_reason for c in await chains(db)] == ["client_responded"]
    assert await queues.outgoing() == []
