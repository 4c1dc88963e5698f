"""POST /contacts/{phone}/forget: the person is erased from the agent (contact, messages, decisions,
follow-ups, calls, notifications, CRM events), the gateway is told on contact_erasures, the log carries a
hash instead of the number, and the number writing again is a new contact."""

import asyncio
import io
import json
from datetime import timedelta

from loguru import logger
from sqlalchemy import func, select, text

from models import Contact, Decision, Message, Notification, ScheduledCall
from service_kit.logs import phone_hash
from tests.conftest import ADMIN_KEY, WEDNESDAY_3PM, incoming

PHONE = "77016660401"
KEY = {"X-API-Key": ADMIN_KEY}


async def a_conversation(db, queues) -> int:
    await queues.publish_incoming(incoming("Сколько стоит хранение?", phone=PHONE, business="ТОО Склад"))
    assert await queues.wait_for(queues.outgoing_queue.name)
    async with db.begin() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == PHONE))
        session.add(ScheduledCall(contact_id=contact.id, scheduled_at=WEDNESDAY_3PM))
        session.add(
            Notification(
                kind="question",
                manager_name="Айгерим",
                manager_phone="77019990001",
                text=f"Клиент https://wa.me/{PHONE} спросил о хранении",
                outgoing_id="question-forget",
                contact_id=contact.id,
            )
        )
        return contact.id


async def rows_about(db, contact_id: int) -> dict[str, int]:
    async with db() as session:
        counts = {}
        for model in (Contact, Message, Decision, ScheduledCall, Notification):
            column = model.id if model is Contact else model.contact_id
            counts[model.__tablename__] = await session.scalar(
                select(func.count()).where(column == contact_id)
            )
        return counts


async def test_forget_erases_the_person_tells_the_gateway_and_logs_only_a_hash(api, db, queues, broker):
    contact_id = await a_conversation(db, queues)
    logged = io.StringIO()
    sink = logger.add(logged, level="DEBUG", format="{message}")
    try:
        response = await api.post(f"/contacts/+{PHONE}/forget", headers=KEY)
    finally:
        logger.remove(sink)

    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert erased["contacts"] == 1 and erased["messages"] == 2 and erased["notifications"] == 1
    assert await rows_about(db, contact_id) == dict.fromkeys(
        ("contacts", "messages", "decisions", "scheduled_calls", "notifications"), 0
    )
    [erasure] = await queues.drain(broker.queues["contact_erasures"].name)
    body = json.loads(erasure.body)
    assert body["phone_number"] == PHONE and erasure.message_id == body["erasure_id"]
    assert f"#{phone_hash(PHONE)} forgotten" in logged.getvalue()
    assert PHONE not in logged.getvalue()


async def test_a_forgotten_number_writing_again_is_a_new_contact(api, db, queues):
    contact_id = await a_conversation(db, queues)
    assert (await api.post(f"/contacts/{PHONE}/forget", headers=KEY)).status_code == 200

    await queues.publish_incoming(incoming("Добрый день", phone=PHONE))
    again = None
    for _ in range(100):
        async with db() as session:
            again = await session.scalar(select(Contact).where(Contact.phone_number == PHONE))
            history = await session.scalar(
                text("SELECT count(*) FROM messages WHERE phone_number = :p AND NOT is_from_bot"),
                {"p": PHONE},
            )
        if again is not None and again.is_client is not None:
            break
        await asyncio.sleep(0.1)
    assert again is not None and again.id != contact_id
    assert history == 1  # only the new message: nothing of the old conversation came back


async def test_forgetting_an_unknown_number_still_tells_the_gateway(api, queues, broker):
    response = await api.post("/contacts/77016660499/forget", headers=KEY)

    assert response.status_code == 200 and response.json()["erased"]["contacts"] == 0
    [erasure] = await queues.drain(broker.queues["contact_erasures"].name)
    assert json.loads(erasure.body)["phone_number"] == "77016660499"


async def test_forget_needs_the_admin_key(api):
    assert (await api.post(f"/contacts/{PHONE}/forget")).status_code == 401


async def test_the_manager_of_an_upcoming_call_hears_it_is_off_without_who_it_was(api, db, queues):
    contact_id = await a_conversation(db, queues)
    async with db.begin() as session:
        for day in (1, -1):  # tomorrow's call is called off; yesterday's is past and says nothing
            session.add(
                ScheduledCall(
                    contact_id=contact_id,
                    scheduled_at=WEDNESDAY_3PM + timedelta(days=day),
                    manager_name="Айгерим",
                    manager_phone="77019990001",
                )
            )
    await queues.outgoing()

    assert (await api.post(f"/contacts/{PHONE}/forget", headers=KEY)).status_code == 200

    [note] = await queues.outgoing()
    assert note["phone_number"] == "77019990001" and note["kind"] == "notification"
    assert (
        note["message_text"] == "📞 Созвон 26.11.2026 в 15:00 отменён: клиент попросил удалить свои данные."
    )
