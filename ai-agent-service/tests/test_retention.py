"""RETENTION_DAYS: the daily job deletes the conversation older than that by the service's clock (messages
and transcripts, decisions, sent notifications); unsent rows, contacts' classification and booked calls
stay."""

import asyncio
from datetime import timedelta
from functools import partial

from sqlalchemy import func, select

from models import Contact, Decision, Message, Notification, ScheduledCall
from service_kit.retention import purge_once, run_retention
from services.retention import purge_older_than
from tests.conftest import WEDNESDAY_3PM, fixed_clock

OLD = WEDNESDAY_3PM - timedelta(days=366)
RECENT = WEDNESDAY_3PM - timedelta(days=364)


async def a_year_of_conversation(db) -> int:
    async with db.begin() as session:
        contact = Contact(phone_number="77016660201", is_client=True, classification_reasoning="ищет склад")
        session.add(contact)
        await session.flush()
        old_words = Message(
            contact_id=contact.id,
            phone_number=contact.phone_number,
            message_id="OLD-1",
            message_text="[ТРАНСКРИБАЦИЯ] старое голосовое",
            is_voice=True,
            voice_transcription="старое голосовое",
            timestamp=OLD,
        )
        old_reply = Message(
            contact_id=contact.id,
            phone_number=contact.phone_number,
            message_text="старый ответ",
            is_from_bot=True,
            timestamp=OLD,
            published_at=OLD,
        )
        never_published = Message(
            contact_id=contact.id,
            phone_number=contact.phone_number,
            message_text="ещё не ушёл",
            is_from_bot=True,
            timestamp=OLD,
        )
        recent = Message(
            contact_id=contact.id,
            phone_number=contact.phone_number,
            message_id="RECENT-1",
            message_text="свежий вопрос",
            timestamp=RECENT,
        )
        session.add_all([old_words, old_reply, never_published, recent])
        await session.flush()
        session.add(Decision(contact_id=contact.id, message_id=old_words.id, kind="replied", created_at=OLD))
        session.add(Decision(contact_id=contact.id, message_id=recent.id, kind="replied", created_at=RECENT))
        session.add(ScheduledCall(contact_id=contact.id, scheduled_at=OLD, created_at=OLD))
        for n, published in enumerate((OLD, None)):
            session.add(
                Notification(
                    kind="question",
                    manager_name="Айгерим",
                    manager_phone="77019990001",
                    text="Клиент спросил о складе",
                    outgoing_id=f"question-old-{n}",
                    contact_id=contact.id,
                    created_at=OLD,
                    published_at=published,
                )
            )
        return contact.id


async def count(db, model, *where) -> int:
    async with db() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_the_conversation_older_than_the_retention_days_is_deleted_and_calls_and_the_contact_stay(db):
    contact_id = await a_year_of_conversation(db)

    removed = await purge_once(partial(purge_older_than, db), clock=fixed_clock(), days=365)

    assert removed == {"decisions": 1, "messages": 2, "notifications": 1, "crm_events": 0}
    async with db() as session:
        texts = sorted((await session.scalars(select(Message.message_text))).all())
        contact = await session.get(Contact, contact_id)
    assert texts == ["ещё не ушёл", "свежий вопрос"]
    assert contact.is_client is True and contact.classification_reasoning == "ищет склад"
    assert await count(db, ScheduledCall) == 1
    assert await count(db, Decision) == 1
    assert await count(db, Notification, Notification.published_at.is_(None)) == 1


async def test_the_daily_job_takes_its_cut_off_from_the_services_clock(db):
    await a_year_of_conversation(db)
    a_month_ago = fixed_clock(WEDNESDAY_3PM - timedelta(days=30))
    round_done = asyncio.Event()

    purge = partial(purge_older_than, db)
    job = asyncio.create_task(run_retention(purge, clock=a_month_ago, days=365, heartbeat=round_done.set))
    await asyncio.wait_for(round_done.wait(), timeout=10)
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)

    assert await count(db, Message) == 4  # a month ago by the clock, nothing was a year old yet
