"""Whole conversations against the sandbox's fake Gemini (the real google-genai SDK over HTTP), the real
prompts and knowledge base, PostgreSQL and RabbitMQ."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Contact, Message, ScheduledCall
from services.message_consumer import Outcome
from tests.conftest import (
    WEDNESDAY_3PM,
    contract_validator,
    handle,
    incoming,
    make_agent,
    make_llm,
    start_consuming,
)
from utils.timezone_helper import ASTANA

BUSINESS = "ТОО Жарык Трейд"


class SteppingClock:
    """A clock the conversation moves forward, so replies and messages keep their real order."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock():
    return SteppingClock(WEDNESDAY_3PM)


@pytest.fixture
async def real_agent(settings, db, broker, knowledge, queues, sandbox, sandbox_url, clock):
    llm = make_llm(settings, db, base_url=sandbox_url)
    yield make_agent(settings, db, broker, llm, knowledge, clock=clock)
    await llm.aclose()


async def say(agent, clock, text, phone="77051112233", business=BUSINESS) -> Outcome:
    return await handle(incoming(text, phone=phone, business=business, at=clock.tick()), agent)


async def contact_state(db, phone) -> bool | None:
    async with db() as session:
        return await session.scalar(select(Contact.is_client).where(Contact.phone_number == phone))


async def test_a_price_question_gets_one_contract_reply_with_a_real_price(real_agent, broker, queues, db):
    consumer = await start_consuming(broker, real_agent)
    body = incoming("Здравствуйте! Сколько стоит тариф Старт?", phone="77051112233", business=BUSINESS)
    try:
        await queues.publish_incoming(body)
        await queues.publish_incoming(body)  # the gateway's redelivery
        published = await queues.wait_for(queues.outgoing_queue.name)
        await queues.wait_for(queues.outgoing_queue.name, seconds=1.0)
    finally:
        await consumer.stop()

    assert len(published) == 1
    reply = json.loads(published[0].body)
    assert list(contract_validator("outgoing_messages").iter_errors(reply)) == []
    assert "15 000 ₸" in reply["message_text"]
    assert reply["reply_to_message_id"] == body["message_id"]
    assert await contact_state(db, "77051112233") is True


async def test_spam_and_bare_greetings_get_no_reply(real_agent, queues, db, clock):
    spam = await say(
        real_agent,
        clock,
        "Заработок в интернете! Переходи http://spam.example",
        phone="77050000001",
        business=None,
    )
    greeting = await say(real_agent, clock, "Здравствуйте", phone="77050000002", business=None)

    assert (spam, greeting) == (Outcome.IGNORED, Outcome.UNCLASSIFIED)
    assert await contact_state(db, "77050000001") is False
    assert await contact_state(db, "77050000002") is None
    assert await queues.outgoing() == []


async def test_an_evening_call_moves_into_working_hours_and_is_booked_on_consent(
    real_agent, queues, db, clock
):
    await say(real_agent, clock, "Добрый день, интересует ваша система для склада")
    await say(real_agent, clock, "Давайте созвонимся завтра в 20:00")
    await say(real_agent, clock, "Да, подходит")

    replies = [r["message_text"] for r in await queues.outgoing()]
    assert replies[1].startswith("К сожалению, в это время мы не работаем")
    assert "Могу предложить 27.11.2026 в 10:00" in replies[1]
    assert replies[2].startswith("Отлично! Записал вас на 27.11.2026 в 10:00 (время Астаны).")
    assert "+77051112233" in replies[2]
    async with db() as session:
        [call] = (await session.scalars(select(ScheduledCall))).all()
    assert call.scheduled_at == datetime(2026, 11, 27, 10, 0, tzinfo=ASTANA) and call.status == "scheduled"

    # Another client asking for the very same slot is offered the next one.
    await say(real_agent, clock, "Давайте созвонимся в пятницу в 10:00", phone="77053334455")
    other = (await queues.outgoing())[-1]["message_text"]
    assert other.startswith("К сожалению, это время уже занято")
    assert "27.11.2026 в 10:30" in other


async def test_a_saturday_call_becomes_monday(real_agent, queues, clock):
    await say(real_agent, clock, "Давайте созвонимся в субботу в 11:00, интересует цена")

    [reply] = await queues.outgoing()
    assert "Могу предложить 30.11.2026 в 10:00" in reply["message_text"]


async def test_independence_day_is_skipped(real_agent, queues, clock):
    clock.now = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)  # Tuesday 15:00 Astana; the 16th is a holiday

    await say(real_agent, clock, "Давайте созвонимся завтра в 11:00")

    [reply] = await queues.outgoing()
    assert "Могу предложить 17.12.2026 в 10:00" in reply["message_text"]


async def test_a_short_gemini_outage_is_ridden_out_by_retries(real_agent, sandbox, queues, clock):
    await sandbox.post("/sandbox/faults", json={"endpoint": "gemini", "status": 503, "count": 2})

    assert await say(real_agent, clock, "Сколько стоит тариф Бизнес?") is Outcome.REPLIED
    assert len(await queues.outgoing()) == 1


async def test_a_retired_model_dead_letters_with_the_setting_named(
    settings, db, broker, knowledge, queues, sandbox_url, sandbox, clock
):
    llm = make_llm(settings, db, base_url=sandbox_url, model="gemini-missing-model")
    consumer = await start_consuming(broker, make_agent(settings, db, broker, llm, knowledge, clock=clock))
    try:
        await queues.publish_incoming(incoming("Сколько стоит?", business=BUSINESS))
        [dead] = await queues.wait_for(queues.incoming_queue.dlq)
    finally:
        await consumer.stop()
        await llm.aclose()

    assert "GEMINI_MODEL" in dead.headers["x-dlq-reason"]
    assert "gemini-missing-model" in dead.headers["x-dlq-reason"]


async def test_many_contacts_are_answered_concurrently(real_agent, broker, sandbox, queues):
    await sandbox.post("/sandbox/faults", json={"endpoint": "gemini", "status": None, "latency_ms": 400})
    consumer = await start_consuming(broker, real_agent)
    started = time.monotonic()
    try:
        for n in range(8):
            await queues.publish_incoming(
                incoming("Сколько стоит тариф Старт?", phone=f"7705600000{n}", business=BUSINESS)
            )
        replies = await queues.wait_for(queues.outgoing_queue.name, count=8, seconds=15)
    finally:
        await consumer.stop()
    elapsed = time.monotonic() - started

    assert len(replies) == 8
    # One at a time this is 8 contacts x 2 Gemini calls x 0.4 s = 6.4 s.
    assert elapsed < 4.0
    stats = (await sandbox.get("/sandbox/stats")).json()
    assert stats["gemini"]["peak_in_flight"] >= 4


async def test_a_burst_from_one_contact_is_answered_once(real_agent, broker, sandbox, queues, db):
    await sandbox.post("/sandbox/faults", json={"endpoint": "gemini", "status": None, "latency_ms": 300})
    consumer = await start_consuming(broker, real_agent)
    try:
        for text in ("Добрый день!", "Мы небольшой магазин", "Сколько стоит тариф Старт?"):
            await queues.publish_incoming(incoming(text, phone="77057770000", business=BUSINESS))
        replies = await queues.wait_for(queues.outgoing_queue.name, count=3, seconds=4)
    finally:
        await consumer.stop()

    assert 1 <= len(replies) <= 2
    async with db() as session:
        unanswered = await session.scalar(
            select(func.count()).where(Message.is_from_bot.is_(False), Message.answered_at.is_(None))
        )
    assert unanswered == 0
