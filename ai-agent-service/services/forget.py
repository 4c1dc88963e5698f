"""Forgetting a person (POST /contacts/{phone}/forget): the gateway is told first over contact_erasures (a
confirmed publish, so nothing is erased here unless the gateway will erase too), then the contact's row goes
with everything about them: messages and transcripts, decisions, follow-ups and booked calls (cascaded), the
managers' notifications and the CRM events that name them. Erasing twice is harmless; a forgotten number
that writes again is a new contact. The log names the person only by a hash of the number."""

from __future__ import annotations

import uuid
from datetime import datetime

from loguru import logger
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import lock_contact
from models import Contact, CrmEvent, Message, Notification
from service_kit.logs import phone_hash
from service_kit.publisher import Outgoing, Publisher


class ErasureNotSent(Exception):
    """The broker did not confirm the gateway's erasure message: nothing was erased."""


async def forget_contact(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    erasures_queue: str,
    phone: str,
    now: datetime,
) -> dict[str, int]:
    """Erases the person in both services; how many rows went here, by table."""
    erasure_id = f"erase-{uuid.uuid4().hex}"
    body = {"erasure_id": erasure_id, "phone_number": phone, "requested_at": now.isoformat()}
    try:
        await publisher.publish(Outgoing(erasures_queue, body, message_id=erasure_id))
    except Exception as exc:
        raise ErasureNotSent(f"contact_erasures not confirmed: {type(exc).__name__}") from exc
    async with sessions.begin() as session:
        await lock_contact(session, phone)  # no turn of this contact commits halfway through the erase
        removed = await _erase(session, phone)
    logger.info(
        "Contact #{} forgotten ({}); the gateway is told ({})", phone_hash(phone), removed, erasure_id
    )
    return removed


async def _erase(session: AsyncSession, phone: str) -> dict[str, int]:
    contact_id = await session.scalar(select(Contact.id).where(Contact.phone_number == phone))
    if contact_id is None:
        return {"contacts": 0, "messages": 0, "notifications": 0, "crm_events": 0}
    messages = await session.scalar(select(func.count()).where(Message.contact_id == contact_id))
    notifications = await session.execute(delete(Notification).where(Notification.contact_id == contact_id))
    crm_events = await session.execute(delete(CrmEvent).where(CrmEvent.contact_id == contact_id))
    # Messages, decisions, follow-ups and scheduled calls go with the contact (ON DELETE CASCADE).
    await session.execute(delete(Contact).where(Contact.id == contact_id))
    return {
        "contacts": 1,
        "messages": messages or 0,
        "notifications": notifications.rowcount,
        "crm_events": crm_events.rowcount,
    }
