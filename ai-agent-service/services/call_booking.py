"""Call booking: code, not the model, decides whether a proposed time is bookable, and what the client is
told about it. A reply that names a call time or claims a booking goes out only if that time is one the code
just booked or offered, or a call the client already has; otherwise the code's own question or offer does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, ScheduledCall
from services.call_mentions import call_mentions, only_names
from utils.timezone_helper import WorkingHours

ASK_TIME = "Какое время вам удобно? Мы работаем пн–пт {start}:00–{end}:00 по Астане 📞"
_NOTES = {
    "outside": "is outside working hours",
    "taken": "is taken",
    "past": "has passed",
    "off_grid": "is off the half-hour grid",
}
_WHY_NOT = {
    "outside": "в это время мы не работаем: созвоны проходят Пн–Пт с {start}:00 до {end}:00",
    "taken": "это время уже занято",
    "past": "это время уже прошло",
    "off_grid": "созвоны начинаются только в начале часа или в половине",
}


@dataclass(frozen=True)
class CallDecision:
    """What the code decided about a call this turn.

    `reply` replaces the model's text outright (a booking confirmation, an offer, a question). Otherwise the
    model's text may name only the `allowed` slots; if it names others or claims a booking, `safe_reply` goes
    out instead.
    """

    reply: str | None = None
    booked: ScheduledCall | None = None
    offered_slot: datetime | None = None
    allowed: list[datetime] = field(default_factory=list)
    safe_reply: str = ""
    note: str | None = None  # why the model's call time was not taken as it was (moved, taken, ...)
    guard: str | None = None  # why the model's text must not go out at all (its time cannot be understood)

    def check_model_text(self, text: str, hours: WorkingHours, now: datetime) -> str | None:
        """Why `text` must not go out as it is (None: it may)."""
        mentions = call_mentions(text, hours.local(now).date())
        if mentions.claims_booking and self.booked is None:
            return "the reply claims a booking the code did not make"
        if not only_names(mentions, [hours.local(slot) for slot in self.allowed]):
            return "the reply names a call time the code did not book or offer"
        return None


def parse_proposed_time(value: str, hours: WorkingHours) -> datetime | None:
    """Any ISO 8601 form ("2026-12-11T20:00", "...:00", "...+05:00", "...Z", "2026-12-11 20:00") → an aware
    datetime; an offset is honoured, a naive time is the business's local time. None when it is no time."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=hours.tz)
    return hours.local(parsed)


async def decide_call(
    session: AsyncSession,
    contact: Contact,
    *,
    agreed: bool,
    proposed_call_time: str | None,
    confirmed: bool,
    now: datetime,
    hours: WorkingHours,
    source_message_id: str,
) -> CallDecision:
    ask = ASK_TIME.format(start=hours.start_hour, end=hours.end_hour)
    existing = await scheduled_slots_of(session, contact.id, now)
    proposed = parse_proposed_time(proposed_call_time, hours) if proposed_call_time else None
    if proposed is None:
        if not proposed_call_time or not (agreed or confirmed):
            return CallDecision(allowed=existing, safe_reply=ask)
        problem = f"proposed_call_time {proposed_call_time!r} is not a time"
        logger.warning("Asking for a time instead: {}", problem)
        return CallDecision(reply=ask, allowed=existing, safe_reply=ask, guard=problem)

    taken = await taken_slots(session, now)
    problem = _why_not_bookable(proposed, hours.local(now), taken, hours)
    if problem is None:
        if not confirmed:
            # The client has not accepted this very time yet: the model may ask about it, nothing more.
            offer = f"Могу предложить {hours.format_slot(proposed)} по времени Астаны. Подходит?"
            return CallDecision(allowed=[*existing, proposed], safe_reply=offer)
        booked = await book_call(session, contact, proposed, now, hours, source_message_id)
        if booked is not None:
            return CallDecision(
                reply=confirmation_text(proposed, contact.phone_number, hours),
                booked=booked,
                allowed=[proposed],
            )
        taken.add(proposed)  # another client took it a moment ago
        problem = "taken"

    slot = hours.next_free_slot(max(proposed, hours.local(now)), taken)
    reason = _WHY_NOT[problem].format(start=hours.start_hour, end=hours.end_hour)
    offer = f"К сожалению, {reason}. Могу предложить {hours.format_slot(slot)} по времени Астаны. Подходит?"
    return CallDecision(
        reply=offer,
        offered_slot=slot,
        allowed=[*existing, slot],
        safe_reply=offer,
        note=f"{hours.format(proposed)} {_NOTES[problem]}: offered {hours.format(slot)}",
    )


def confirmation_text(slot: datetime, phone_number: str, hours: WorkingHours) -> str:
    when = hours.local(slot).strftime("%d.%m.%Y в %H:%M")
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
    return set(rows)


async def scheduled_slots_of(session: AsyncSession, contact_id: int, now: datetime) -> list[datetime]:
    """The contact's own upcoming calls: a reply may remind the client of them."""
    rows = await session.scalars(
        select(ScheduledCall.scheduled_at).where(
            ScheduledCall.contact_id == contact_id,
            ScheduledCall.status == "scheduled",
            ScheduledCall.scheduled_at >= now,
        )
    )
    return list(rows)


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
    logger.info("Call booked for {} at {}", contact.phone_number, slot.isoformat())
    return await session.get(ScheduledCall, new_id)


def _why_not_bookable(
    proposed: datetime, now_local: datetime, taken: set[datetime], hours: WorkingHours
) -> str | None:
    if proposed <= now_local:
        return "past"
    if not hours.is_working_time(proposed):
        return "outside"
    if proposed.minute % hours.slot_minutes or proposed.second or proposed.microsecond:
        return "off_grid"
    if proposed in taken:
        return "taken"
    return None
