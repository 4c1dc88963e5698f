"""No row lock and no pooled connection are held while Gemini writes a touch: the chain is claimed in a short
transaction, and the touch is recorded only if the chain is still open and still this worker's.
Gemini is respx (GeminiStub) behind a delay; PostgreSQL and RabbitMQ are real."""

import dataclasses

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from models import FollowUp, Message
from service_kit.runtime import session_factory
from services.follow_up_arming import arm_follow_ups
from services.follow_up_chain import TOUCH_SPACING
from services.follow_up_scheduler import send_due_touches
from tests.conftest import handle, incoming, make_llm
from tests.gemini_stub import SlowGemini
from tests.test_follow_up_scheduler import (
    PHONE,
    astana,
    at_moment,
    chains,
    conversation,
    price_talk,
    touches_stored,
)

OTHER_PHONE = "77012225566"
DUE = astana(26, 15)  # touch 1 of a silence that began Wednesday 14:00 is due Thursday 14:00


async def armed(db, follow_ups, *phones: str) -> None:
    for phone in phones:
        await conversation(db, *price_talk(astana(25, 14)), phone=phone)
    async with db.begin() as session:
        await arm_follow_ups(session, intervals=follow_ups.intervals, hours=follow_ups.hours, now=DUE)


async def test_while_gemini_writes_a_touch_its_chain_is_unlocked_and_another_worker_sends_the_next(
    settings, follow_ups, db, queues
):
    await armed(db, follow_ups, PHONE, OTHER_PHONE)
    # One connection for both workers and Gemini's usage rows: a worker holding it through Gemini's answer
    # would leave the other (and itself) waiting for the pool.
    engine = create_async_engine(settings.DATABASE_URL, pool_size=1, max_overflow=0, pool_timeout=3)
    one_connection = session_factory(engine)
    llm = make_llm(settings, one_connection)
    during_the_first_touch: dict = {}

    async def meanwhile() -> None:
        [first, _] = await chains(db)
        async with db.begin() as session:  # would fail at once if the first worker kept the row locked
            await session.execute(
                text("SELECT id FROM follow_ups WHERE id = :id FOR UPDATE NOWAIT"), {"id": first.id}
            )
        # Touches due at once go out TOUCH_SPACING apart: the other worker comes when the second is due.
        later = at_moment(follow_ups, DUE + TOUCH_SPACING)
        other_worker = dataclasses.replace(later, sessions=one_connection, llm=llm)
        during_the_first_touch["sent"] = await send_due_touches(other_worker)

    slow = SlowGemini(llm, latency=0.3, during_call=meanwhile)
    worker = dataclasses.replace(at_moment(follow_ups, DUE), sessions=one_connection, llm=slow)
    try:
        sent = await send_due_touches(worker)
    finally:
        await llm.aclose()
        await engine.dispose()

    [other] = during_the_first_touch["sent"]
    assert [s.message.phone_number for s in sent] == [PHONE]
    assert other.message.phone_number == OTHER_PHONE
    assert sorted(b["phone_number"] for b in await queues.outgoing()) == sorted([PHONE, OTHER_PHONE])
    assert [c.touch_number for c in await chains(db)] == [2, 2]


async def test_a_chain_stopped_by_a_client_message_while_gemini_writes_gets_no_touch(
    follow_ups, agent, db, queues
):
    await armed(db, follow_ups, PHONE)

    async def the_client_writes_and_is_answered() -> None:
        await handle(incoming("А скидка при оплате за год есть?", phone=PHONE, at=astana(26, 14, 50)), agent)

    slow = SlowGemini(follow_ups.llm, latency=0.1, during_call=the_client_writes_and_is_answered)
    sent = await send_due_touches(dataclasses.replace(at_moment(follow_ups, DUE), llm=slow))

    assert sent == []
    assert await touches_stored(db) == []
    [chain] = await chains(db)
    assert (chain.is_completed, chain.stop_reason, chain.touch_number) == (True, "client_responded", 1)
    assert [b["sent_by"] for b in await queues.outgoing()] == ["reply"]


async def test_a_client_message_stored_while_gemini_writes_stops_the_chain_without_a_touch(
    follow_ups, db, queues
):
    await armed(db, follow_ups, PHONE)

    async def the_client_writes() -> None:
        [chain] = await chains(db)
        async with db.begin() as session:  # stored by the consumer, not answered yet
            session.add(
                Message(
                    contact_id=chain.contact_id,
                    phone_number=PHONE,
                    message_id="WA-while-gemini-writes",
                    message_text="Да, давайте созвонимся",
                    timestamp=astana(26, 14, 55),
                )
            )

    slow = SlowGemini(follow_ups.llm, latency=0.1, during_call=the_client_writes)
    sent = await send_due_touches(dataclasses.replace(at_moment(follow_ups, DUE), llm=slow))

    assert sent == [] and await touches_stored(db) == [] and await queues.outgoing() == []
    assert [c.stop_reason for c in await chains(db)] == ["client_said_yes"]


async def test_a_worker_whose_claim_expired_and_was_taken_over_records_nothing(follow_ups, db, queues):
    await armed(db, follow_ups, PHONE)
    taken_over: dict = {}

    async def the_claim_expires_and_another_worker_sends() -> None:
        async with db.begin() as session:
            await session.execute(update(FollowUp).values(claimed_until=func.now()))
        taken_over["sent"] = await send_due_touches(at_moment(follow_ups, DUE))

    slow = SlowGemini(follow_ups.llm, latency=0.1, during_call=the_claim_expires_and_another_worker_sends)
    sent = await send_due_touches(dataclasses.replace(at_moment(follow_ups, DUE), llm=slow))

    assert sent == [] and len(taken_over["sent"]) == 1
    [touch] = await touches_stored(db)
    assert [b["outgoing_id"] for b in await queues.outgoing()] == [touch.outgoing_id]
    async with db() as session:
        assert await session.scalar(select(FollowUp.touch_number)) == 2
