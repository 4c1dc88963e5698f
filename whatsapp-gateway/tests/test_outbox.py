"""The outbox: a row written but never published (a crash in between) goes out once."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models.message_log import MessageLog
from service_kit.clock import offset_clock, utc_now
from service_kit.outbox import REPAIR_AFTER, relay
from services.outbox import MessageLogOutbox
from tests.conftest import collect, without_amqp

pytestmark = pytest.mark.usefixtures("clean")

BODY = {
    "message_id": "CRASH0001",
    "chat_id": "77011234567@c.us",
    "phone_number": "77011234567",
    "sender_name": None,
    "message_text": "до падения",
    "is_voice": False,
    "voice_url": None,
    "timestamp": "2026-10-05T14:30:00+05:00",
    "contact_info": None,
    "message_type": "text",
}


async def _pending_row(sessions) -> int:
    async with sessions() as session, session.begin():
        row = MessageLog(
            message_id="CRASH0001",
            chat_id=BODY["chat_id"],
            phone_number=BODY["phone_number"],
            direction="incoming",
            message_type="text",
            message_text=BODY["message_text"],
            queue_status="pending",
            target_queue="incoming",
            payload=BODY,
        )
        session.add(row)
    return row.id


@pytest.fixture
def outbox(topology) -> MessageLogOutbox:
    return MessageLogOutbox(topology, utc_now)


async def test_a_pending_row_left_by_a_crash_is_republished_once(sessions, broker, publisher, outbox, queues):
    row_id = await _pending_row(sessions)
    first = await relay(sessions, publisher, outbox, older_than=timedelta(0))
    second = await relay(sessions, publisher, outbox, older_than=timedelta(0))
    again = await relay(sessions, publisher, outbox, ids=[row_id])
    found = await collect(broker, queues.incoming, expect=1, settle=0.5)
    assert (first, second, again) == (1, 0, False)
    assert [without_amqp(b) for b in found] == [BODY]
    async with sessions() as session:
        row = await session.scalar(select(MessageLog).where(MessageLog.id == row_id))
    assert row.queue_status == "published" and row.processed_at is not None


async def test_fresh_rows_are_left_to_their_writer(sessions, publisher, outbox):
    await _pending_row(sessions)
    assert await relay(sessions, publisher, outbox, older_than=timedelta(minutes=5)) == 0


async def test_the_running_gateway_repairs_pending_rows_by_itself(settings, sessions, broker, queues):
    from tests.conftest import running_gateway

    await _pending_row(sessions)
    async with sessions() as session, session.begin():
        # created_at is the database's time, and the repair compares it with the database's now.
        await session.execute(
            update(MessageLog)
            .where(MessageLog.message_id == "CRASH0001")
            .values(created_at=func.now() - timedelta(minutes=1))
        )
    async with running_gateway(settings):
        found = await collect(broker, queues.incoming, expect=1, wait_s=8, settle=0.5)
    assert [b["message_id"] for b in found] == ["CRASH0001"]


async def test_a_batch_of_pending_rows_goes_out_once_in_the_order_written(
    sessions, broker, publisher, outbox, queues
):
    ids = []
    async with sessions() as session, session.begin():
        for n in range(3):
            row = MessageLog(
                message_id=f"BATCH{n}",
                chat_id=BODY["chat_id"],
                phone_number=BODY["phone_number"],
                direction="incoming",
                message_type="text",
                message_text=f"сообщение {n}",
                queue_status="pending",
                target_queue="incoming",
                payload={**BODY, "message_id": f"BATCH{n}", "message_text": f"сообщение {n}"},
            )
            session.add(row)
            await session.flush()
            ids.append(row.id)
    first = await relay(sessions, publisher, outbox, ids=ids)
    again = await relay(sessions, publisher, outbox, ids=ids)
    found = await collect(broker, queues.incoming, expect=3, settle=0.5)
    assert (first, again) == (3, 0)
    assert [b["message_text"] for b in found] == ["сообщение 0", "сообщение 1", "сообщение 2"]


@pytest.mark.parametrize("days", [-3, 3])
async def test_a_stuck_row_is_republished_when_the_service_clock_runs_days_off(
    sessions, broker, publisher, topology, queues, days
):
    await _pending_row(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(MessageLog)
            .where(MessageLog.message_id == "CRASH0001")
            .values(created_at=func.now() - timedelta(minutes=1))
        )
    shifted = MessageLogOutbox(topology, offset_clock(days * 86400))
    published = await relay(sessions, publisher, shifted, older_than=REPAIR_AFTER)
    found = await collect(broker, queues.incoming, expect=1, settle=0.5)
    assert published == 1
    assert [b["message_id"] for b in found] == ["CRASH0001"]


async def test_a_fresh_row_is_left_to_its_writer_when_the_service_clock_runs_days_ahead(
    sessions, publisher, topology
):
    await _pending_row(sessions)
    shifted = MessageLogOutbox(topology, offset_clock(3 * 86400))
    assert await relay(sessions, publisher, shifted, older_than=REPAIR_AFTER) == 0
