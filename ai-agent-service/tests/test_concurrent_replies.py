"""Many conversations at once while Gemini is slow: no database connection waits on Gemini, and one contact's
messages still get one answer each, never two, also when two replicas work on the same contact.
Gemini is respx (GeminiStub) behind a delay; PostgreSQL and RabbitMQ are real."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from models import Contact, Message
from service_kit.runtime import session_factory
from services.message_consumer import Outcome
from tests.conftest import handle, incoming, make_agent, make_llm, start_consuming
from tests.gemini_stub import SlowGemini

BUSINESS = "ТОО Жарык Трейд"  # the stub's moderator calls a contact with a company a client
PHONE = "77051230000"


def at(second: int) -> datetime:
    return datetime(2026, 11, 25, 9, 0, second, tzinfo=UTC)


async def client_texts_unanswered(db) -> int:
    async with db() as session:
        return await session.scalar(
            select(func.count()).where(Message.is_from_bot.is_(False), Message.answered_at.is_(None))
        )


async def test_fifty_conversations_with_a_slow_gemini_are_answered_at_once_on_a_three_connection_pool(
    settings, db, broker, knowledge, gemini, queues
):
    # A handler holding its connection through two 1 s Gemini calls would leave 47 of them timing out here.
    engine = create_async_engine(settings.DATABASE_URL, pool_size=3, max_overflow=0, pool_timeout=5)
    small_pool = session_factory(engine)
    llm = make_llm(settings, small_pool)
    slow = SlowGemini(llm, latency=1.0)
    consumer = await start_consuming(broker, make_agent(settings, small_pool, broker, slow, knowledge))
    started = time.monotonic()
    try:
        for n in range(50):
            await queues.publish_incoming(
                incoming("Сколько стоит тариф Старт?", phone=f"770560{n:05d}", business=BUSINESS)
            )
        replies = await queues.wait_for(queues.outgoing_queue.name, count=50, seconds=30)
    finally:
        await consumer.stop()
        await llm.aclose()
        await engine.dispose()
    elapsed = time.monotonic() - started

    assert len(replies) == 50
    # Far more Gemini calls waited at once than there are connections (3) or work slots (6); not all 50, as
    # the slots let the burst in a few at a time, the first answered while the last are stored.
    assert slow.peak_in_flight >= 20
    # One at a time this is 50 x 2 s; at once it is 2 s plus the database work.
    assert elapsed < 12
    assert await queues.drain(queues.incoming_queue.dlq) == []


async def test_a_message_arriving_while_the_reply_is_drafted_is_answered_by_the_redrafted_reply(
    settings, db, broker, knowledge, gemini, queues
):
    llm = make_llm(settings, db)
    agent = make_agent(settings, db, broker, SlowGemini(llm, latency=0.3), knowledge)
    first = incoming("Добрый день! Сколько стоит тариф Старт?", phone=PHONE, business=BUSINESS, at=at(0))
    second = incoming("И сколько стоит внедрение?", phone=PHONE, business=BUSINESS, at=at(5))

    async def a_moment_later():
        await asyncio.sleep(0.1)
        return await handle(second, agent)

    try:
        outcomes = await asyncio.gather(handle(first, agent), a_moment_later())
    finally:
        await llm.aclose()

    assert outcomes == [Outcome.REPLIED, Outcome.COVERED]
    replies = await queues.outgoing()
    assert [reply["reply_to_message_id"] for reply in replies] == [first["message_id"]]
    final_prompt = gemini.prompts_of("sales")[-1].split("НОВОЕ СООБЩЕНИЕ КЛИЕНТА:")[1]
    assert "тариф Старт" in final_prompt and "внедрение" in final_prompt
    assert await client_texts_unanswered(db) == 0


async def test_two_replicas_drafting_for_one_contact_send_one_reply(
    settings, db, broker, knowledge, gemini, queues
):
    llm = make_llm(settings, db)
    # Two AgentDeps share the database but not their in-process locks: two replicas of the service.
    replica_a = make_agent(settings, db, broker, SlowGemini(llm, latency=0.5), knowledge)
    replica_b = make_agent(settings, db, broker, SlowGemini(llm, latency=0.5), knowledge)
    first = incoming("Добрый день! Сколько стоит тариф Старт?", phone=PHONE, business=BUSINESS, at=at(0))
    second = incoming("Нас пятеро в отделе продаж", phone=PHONE, business=BUSINESS, at=at(5))

    async def a_moment_later():
        await asyncio.sleep(0.2)
        return await handle(second, replica_b)

    try:
        outcomes = await asyncio.gather(handle(first, replica_a), a_moment_later())
    finally:
        await llm.aclose()

    assert sorted(outcomes) == sorted([Outcome.REPLIED, Outcome.COVERED])
    assert len(await queues.outgoing()) == 1
    assert await client_texts_unanswered(db) == 0


async def test_a_touch_stored_elsewhere_while_gemini_answers_is_in_the_redrafted_reply(
    settings, db, broker, knowledge, gemini, queues
):
    async def another_replica_sends_a_touch():
        async with db.begin() as session:
            contact = await session.scalar(select(Contact).where(Contact.phone_number == PHONE))
            session.add(
                Message(
                    contact_id=contact.id,
                    phone_number=PHONE,
                    message_text="Напоминаем о нашем предложении по складу",
                    is_from_bot=True,
                    timestamp=at(1) + timedelta(seconds=1),
                    message_type="text",
                    sent_by="follow_up",
                    outgoing_id="follow-up-elsewhere",
                )
            )

    llm = make_llm(settings, db)
    slow = SlowGemini(llm, latency=0.2, during_call=another_replica_sends_a_touch)
    agent = make_agent(settings, db, broker, slow, knowledge)
    try:
        outcome = await handle(
            incoming("Сколько стоит тариф Старт?", phone=PHONE, business=BUSINESS, at=at(0)), agent
        )
    finally:
        await llm.aclose()

    assert outcome is Outcome.REPLIED
    assert len(await queues.outgoing()) == 1
    assert "Напоминаем о нашем предложении" in gemini.prompts_of("sales")[-1]
    assert len(gemini.prompts_of("moderator")) == 2  # the whole turn was drafted again
