"""The outbox over bot messages: a reply committed but never confirmed by the broker is published later,
exactly once (service_kit's relay over services/outbox.py's table)."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Contact, Message
from service_kit.outbox import REPAIR_AFTER, relay
from services.outbox import BotMessageOutbox
from tests.conftest import contract_validator


@pytest.fixture
def outbox(broker) -> BotMessageOutbox:
    return BotMessageOutbox(broker.queues["outgoing_messages"].name)


async def repair_pass(db, broker, outbox) -> int:
    return await relay(db, broker.publisher, outbox, older_than=REPAIR_AFTER)


async def stored_reply(db, *, age_seconds: int, outgoing_id: str = "reply-WA1") -> Message:
    async with db.begin() as session:
        contact = Contact(phone_number="77017778899", is_client=True)
        session.add(contact)
        await session.flush()
        reply = Message(
            contact_id=contact.id,
            phone_number=contact.phone_number,
            message_text="Здравствуйте! Тариф Старт стоит 15 000 ₸ в месяц.",
            is_from_bot=True,
            sent_by="reply",
            outgoing_id=outgoing_id,
            reply_to_message_id="WA1",
            created_at=func.now() - timedelta(seconds=age_seconds),
        )
        session.add(reply)
    return reply


async def published_at(db, message_id: int):
    async with db() as session:
        return await session.scalar(select(Message.published_at).where(Message.id == message_id))


async def test_an_unconfirmed_reply_is_republished_once(db, broker, outbox, queues):
    reply = await stored_reply(db, age_seconds=30)

    first = await repair_pass(db, broker, outbox)
    second = await repair_pass(db, broker, outbox)

    assert (first, second) == (1, 0)
    [body] = await queues.outgoing()
    assert list(contract_validator("outgoing_messages").iter_errors(body)) == []
    assert body == {
        "phone_number": "77017778899",
        "message_text": "Здравствуйте! Тариф Старт стоит 15 000 ₸ в месяц.",
        "reply_to_message_id": "WA1",
        "mark_as_read": True,
        "outgoing_id": "reply-WA1",
        "sent_by": "reply",
    }
    assert await published_at(db, reply.id) is not None


async def test_a_fresh_reply_is_left_to_its_own_publisher(db, broker, outbox, queues):
    reply = await stored_reply(db, age_seconds=0)

    assert await repair_pass(db, broker, outbox) == 0
    assert await relay(db, broker.publisher, outbox, ids=[reply.id]) == 1
    assert len(await queues.outgoing()) == 1
    assert await published_at(db, reply.id) is not None


async def test_two_outbox_loops_never_publish_the_same_reply_twice(db, broker, outbox, queues):
    for n in range(20):
        await stored_reply_for(db, n)

    counts = await asyncio.gather(repair_pass(db, broker, outbox), repair_pass(db, broker, outbox))

    assert sum(counts) == 20
    assert len(await queues.outgoing()) == 20


async def stored_reply_for(db, n: int) -> None:
    async with db.begin() as session:
        contact = Contact(phone_number=f"7701555{n:04d}", is_client=True)
        session.add(contact)
        await session.flush()
        session.add(
            Message(
                contact_id=contact.id,
                phone_number=contact.phone_number,
                message_text=f"ответ {n}",
                is_from_bot=True,
                sent_by="reply",
                outgoing_id=f"reply-{n}",
                created_at=func.now() - timedelta(seconds=60),
            )
        )
