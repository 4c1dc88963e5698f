"""Call booking: code, not the model, decides whether a proposed time is bookable, and writes the answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, ScheduledCall
from utils.metrics import CALLS_BOOKED
from utils.timezone_helper import ASTANA, format_slot_ru, is_working_time, next_working_slot, to_astana

SLOT_MINUTES = 30
PROPOSED_TIME_FORMAT = "%Y-%m-%dT%H:%M"
_WHY_NOT = {
    "outside": "в это время мы не работаем: созвоны проходят Пн–Пт с {start}:00 до {end}:00",
    "taken": "это время уже занято",
    "past": "это время уже прошло",
    "off_grid": "созвоны начинаются только в начале часа или в половине",
}


@dataclass(frozen=True)
class WorkingHours:
    start_hour: int
    end_hour: int
    timezone_name: str


@dataclass(frozen=True)
class CallDecision:
    """`reply` replaces the model's text when code booked a call or offers another slot."""

    reply: str | None = None
    booked: ScheduledCall | None = None
    offered_slot: datetime | None = None


def parse_proposed_time(value: str) -> datetime | None:
    """ "YYYY-MM-DDTHH:MM" in Astana local time → an aware datetime; None when the model wrote garbage."""
    try:
        return datetime.strptime(value.strip(), PROPOSED_TIME_FORMAT).replace(tzinfo=ASTANA)
    except ValueError:
        return None


async def decide_call(
    session: AsyncSession,
    contact: Contact,
    *,
    proposed_call_time: str | None,
    confirmed: bool,
    now: datetime,
    hours: WorkingHours,
    source_message_id: str,
) -> CallDecision:
    if not proposed_call_time:
        return CallDecision()
    proposed = parse_proposed_time(proposed_call_time)
    if proposed is None:
        logger.warning("Ignoring unparsable proposed_call_time {!r}", proposed_call_time)
        return CallDecision()

    now_local = to_astana(now)
    taken = await taken_slots(session, now)
    problem = _why_not_bookable(proposed, now_local, taken, hours)
    if problem is None:
        if not confirmed:
            return CallDecision()  # the model's reply asks the client to confirm the time
        booked = await book_call(session, contact, proposed, now, hours, source_message_id)
        if booked is not None:
            return CallDecision(reply=confirmation_text(proposed, contact.phone_number), booked=booked)
        taken.add(proposed)  # another client took it a moment ago
        problem = "taken"

    slot = next_working_slot(max(proposed, now_local), taken, hours.start_hour, hours.end_hour, SLOT_MINUTES)
    reason = _WHY_NOT[problem].format(start=hours.start_hour, end=hours.end_hour)
    offer = f"К сожалению, {reason}. Могу предложить {format_slot_ru(slot)} по времени Астаны. Подходит?"
    return CallDecision(reply=offer, offered_slot=slot)


def confirmation_text(slot: datetime, phone_number: str) -> str:
    when = to_astana(slot).strftime("%d.%m.%Y в %H:%M")
    return (
        f"Отлично! Записал вас на {when} (время Астаны). "
        f"Наш менеджер свяжется с вами по номеру +{phone_number}. До связи! 👍"
    )


async def taken_slots(session: AsyncSession, now: datetime) -> set[datetime]:
    rows = await session.scalars(
        select(ScheduledCall.scheduled_at).where(
            ScheduledCall.status == "scheduled", ScheduledCall.scheduled_at >= now
        )
    )
    return {to_astana(value) for value in rows}


async def book_call(
    session: AsyncSession,
    contact: Contact,
    slot: datetime,
    now: datetime,
    hours: WorkingHours,
    source_message_id: str,
) -> ScheduledCall | None:
    """Inserts the call; None when the slot is already taken (the unique index settles races)."""
    new_id = await session.scalar(
        insert(ScheduledCall)
        .values(
            contact_id=contact.id,
            scheduled_at=slot,
            timezone=hours.timezone_name,
            status="scheduled",
            notes=f"Booked by the AI sales agent (message {source_message_id})",
        )
        .on_conflict_do_nothing(index_elements=["scheduled_at"], index_where=text("status = 'scheduled'"))
        .returning(ScheduledCall.id)
    )
    if new_id is None:
        return None
    # A client who books again is rescheduling: the earlier call frees its slot.
    await session.execute(
        update(ScheduledCall)
        .where(
            ScheduledCall.contact_id == contact.id,
            ScheduledCall.status == "scheduled",
            ScheduledCall.scheduled_at > now,
            ScheduledCall.id != new_id,
        )
        .values(status="cancelled", notes="Rescheduled by the client")
    )
    CALLS_BOOKED.inc()
    logger.info("Call booked for {} at {}", contact.phone_number, slot.isoformat())
    return await session.get(ScheduledCall, new_id)


def _why_not_bookable(
    proposed: datetime, now_local: datetime, taken: set[datetime], hours: WorkingHours
) -> str | None:
    if proposed <= now_local:
        return "past"
    if not is_working_time(proposed, hours.start_hour, hours.end_hour, SLOT_MINUTES):
        return "outside"
    if proposed.minute % SLOT_MINUTES:
        return "off_grid"
    if proposed in taken:
        return "taken"
    return None
