"""Forgetting a person (POST /contacts/{phone}/forget): the gateway is told first over contact_erasures (a
confirmed publish, so nothing is erased here unless the gateway will erase too), then the contact's row goes
with everything about them: messages and transcripts, decisions, follow-ups and booked calls (cascaded), the
managers' notifications and the CRM events that name them. A manager with an upcoming call of theirs hears
that it is off, without the client's name or number. Erasing twice is harmless; a forgotten number that writes
again is a new contact. The log names the person only by a hash of the number."""

from __future__ import annotations

import uuid
from datetime import datetime

from loguru import logger
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import lock_contact
from models import Contact, CrmEvent, Message, Notification, ScheduledCall
from service_kit.logs import phone_hash
from service_kit.managers import Manager
from service_kit.outbox import relay
from service_kit.publisher import Outgoing, Publisher
from services.call_calendar import SCHEDULED
from services.language import when_text
from services.notifications import NotificationOutbox, notify
from utils.timezone_helper import WorkingHours

CALL_ERASED = "call_changed"


class ErasureNotSent(Exception):
    """The broker did not confirm the gateway's erasure message: nothing was erased."""


async def forget_contact(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    erasures_queue: str,
    phone: str,
    now: datetime,
    hours: WorkingHours,
    notification_outbox: NotificationOutbox,
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
        removed, told = await _erase(session, phone, now, hours)
    await relay(sessions, publisher, notification_outbox, ids=told)
    logger.info(
        "Contact #{} forgotten ({}); the gateway is told ({})", phone_hash(phone), removed, erasure_id
    )
    return removed


async def _erase(
    session: AsyncSession, phone: str, now: datetime, hours: WorkingHours
) -> tuple[dict[str, int], list[int]]:
    """How many rows went, by table, and the notifications written to the managers of upcoming calls."""
    contact_id = await session.scalar(select(Contact.id).where(Contact.phone_number == phone))
    if contact_id is None:
        return {"contacts": 0, "messages": 0, "notifications": 0, "crm_events": 0}, []
    messages = await session.scalar(select(func.count()).where(Message.contact_id == contact_id))
    notifications = await session.execute(delete(Notification).where(Notification.contact_id == contact_id))
    told = await _tell_managers_calls_are_off(session, contact_id, now, hours)
    crm_events = await session.execute(delete(CrmEvent).where(CrmEvent.contact_id == contact_id))
    # Messages, decisions, follow-ups and scheduled calls go with the contact (ON DELETE CASCADE).
    await session.execute(delete(Contact).where(Contact.id == contact_id))
    removed = {
        "contacts": 1,
        "messages": messages or 0,
        "notifications": notifications.rowcount,
        "crm_events": crm_events.rowcount,
    }
    return removed, told


async def _tell_managers_calls_are_off(
    session: AsyncSession, contact_id: int, now: datetime, hours: WorkingHours
) -> list[int]:
    calls = await session.scalars(
        select(ScheduledCall).where(
            ScheduledCall.contact_id == contact_id,
            ScheduledCall.status == SCHEDULED,
            ScheduledCall.scheduled_at > now,
            ScheduledCall.manager_phone.is_not(None),
        )
    )
    told = []
    for call in calls:
        manager = Manager(call.manager_name or "", call.manager_phone)
        when = when_text(call.scheduled_at, hours)
        text = f"📞 Созвон {when} отменён: клиент попросил удалить свои данные."
        # Not tied to the contact: the notification outlives the erase it reports.
        written = await notify(session, manager, CALL_ERASED, text, f"call-erased-{call.id}")
        told += [written] if written else []
    return told
