"""The managers' calendar: which slots are taken, booking a call with a free manager (round robin among the
free ones), cancelling and moving calls, and what the client is told about each. A slot is full only when
every manager has a call then; without MANAGERS there is one calendar.

Runs inside the caller's transaction (under the contact's lock when a client is involved); the database's
unique index on (slot, manager) settles concurrent bookings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, ScheduledCall
from service_kit.managers import Manager
from services.language import KK, RU, in_language, when_text
from utils.timezone_helper import WorkingHours

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
MOVED = "moved"


@dataclass(frozen=True)
class CallPolicy:
    managers: tuple[Manager, ...]  # MANAGERS; empty: one calendar, calls without a manager
    reminder: timedelta  # CALL_REMINDER_MINUTES before a call, its reminders go out

    @property
    def capacity(self) -> int:
        """Calls one slot holds."""
        return max(1, len(self.managers))


# What the client is told about their call, in their language ({manager}: MANAGER below, with or without
# the manager's name).
CONFIRMATION = {
    RU: "Отлично! Записал вас на {when} (время Астаны). {manager} свяжется с вами по номеру +{phone}. "
    "До связи! 👍",
    KK: "Керемет! Сізді қоңырауға жазып қойдым: {when} (Астана уақытымен). {manager} сізге +{phone} "
    "нөміріне хабарласады. Байланыста болайық! 👍",
}
CANCELLATION = {
    RU: "Созвон {when} (время Астаны) отменён. Если захотите назначить новое время — просто напишите нам 😊",
    KK: "{when} (Астана уақытымен) белгіленген қоңырау болдырылмады. Жаңа уақыт белгілегіңіз келсе — "
    "бізге жазыңыз 😊",
}
MOVE = {
    RU: "Созвон перенесён на {when} (время Астаны). {manager} свяжется с вами по номеру +{phone} 👍",
    KK: "Қоңырау басқа уақытқа ауыстырылды: {when} (Астана уақытымен). {manager} сізге +{phone} нөміріне "
    "хабарласады 👍",
}
MANAGER = {RU: "Наш менеджер", KK: "Менеджеріміз"}


def confirmation_text(call: ScheduledCall, phone_number: str, hours: WorkingHours, language: str = RU) -> str:
    return _told(CONFIRMATION, call, phone_number, hours, language)


def cancellation_text(call: ScheduledCall, hours: WorkingHours, language: str = RU) -> str:
    return in_language(CANCELLATION, language).format(when=when_text(call.scheduled_at, hours, language))


def move_text(call: ScheduledCall, phone_number: str, hours: WorkingHours, language: str = RU) -> str:
    return _told(MOVE, call, phone_number, hours, language)


def _told(
    texts: dict[str, str], call: ScheduledCall, phone_number: str, hours: WorkingHours, language: str
) -> str:
    manager = " ".join(filter(None, (in_language(MANAGER, language), call.manager_name)))
    when = when_text(call.scheduled_at, hours, language)
    return in_language(texts, language).format(when=when, manager=manager, phone=phone_number)


async def taken_slots(session: AsyncSession, now: datetime, policy: CallPolicy) -> set[datetime]:
    """Upcoming slots every manager is busy in."""
    rows = await session.scalars(
        select(ScheduledCall.scheduled_at)
        .where(ScheduledCall.status == SCHEDULED, ScheduledCall.scheduled_at >= now)
        .group_by(ScheduledCall.scheduled_at)
        .having(func.count() >= policy.capacity)
    )
    return set(rows)


async def scheduled_calls_of(session: AsyncSession, contact_id: int, now: datetime) -> list[ScheduledCall]:
    """The contact's upcoming calls, soonest first."""
    rows = await session.scalars(
        select(ScheduledCall)
        .where(
            ScheduledCall.contact_id == contact_id,
            ScheduledCall.status == SCHEDULED,
            ScheduledCall.scheduled_at >= now,
        )
        .order_by(ScheduledCall.scheduled_at)
    )
    return list(rows)


async def book_call(
    session: AsyncSession,
    contact: Contact,
    slot: datetime,
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
    note: str,
) -> ScheduledCall | None:
    """Books the slot with a free manager; None when none is free (a concurrent booking may have just taken
    the last one). A client who books again is rescheduling: their other upcoming calls become MOVED."""
    for manager in await _free_managers_in_turn(session, slot, policy):
        new_id = await session.scalar(
            insert(ScheduledCall)
            .values(
                contact_id=contact.id,
                scheduled_at=slot,
                timezone=hours.timezone_name,
                status=SCHEDULED,
                notes=note,
                manager_name=manager.name if manager else None,
                manager_phone=manager.phone if manager else None,
                reminder_due_at=slot - policy.reminder if slot - now > policy.reminder else None,
            )
            .on_conflict_do_nothing(
                # The index's own expression, literally: a bound '' would not match it under a generic plan.
                index_elements=[ScheduledCall.scheduled_at, text("coalesce(manager_phone, '')")],
                index_where=text("status = 'scheduled'"),
            )
            .returning(ScheduledCall.id)
        )
        if new_id is not None:
            await session.execute(
                update(ScheduledCall)
                .where(
                    ScheduledCall.contact_id == contact.id,
                    ScheduledCall.status == SCHEDULED,
                    ScheduledCall.scheduled_at > now,
                    ScheduledCall.id != new_id,
                )
                .values(status=MOVED, notes=f"Moved to {hours.format(slot)}")
            )
            logger.info("Call booked for {} at {}", contact.phone_number, slot.isoformat())
            return await session.get_one(ScheduledCall, new_id)
    return None


def cancel_call(call: ScheduledCall, why: str) -> None:
    call.status = CANCELLED
    call.notes = why


async def _free_managers_in_turn(
    session: AsyncSession, slot: datetime, policy: CallPolicy
) -> list[Manager | None]:
    """The managers without a call in `slot`, the one whose last booking is oldest first (round robin);
    [None] for the one calendar without managers."""
    if not policy.managers:
        return [None]
    rows = await session.execute(
        select(
            ScheduledCall.manager_phone,
            func.max(ScheduledCall.created_at),
            func.bool_or((ScheduledCall.scheduled_at == slot) & (ScheduledCall.status == SCHEDULED)),
        ).group_by(ScheduledCall.manager_phone)
    )
    last_booked, busy = {}, set()
    for phone, latest, in_slot in rows:
        last_booked[phone] = latest
        if in_slot:
            busy.add(phone)
    free = [m for m in policy.managers if m.phone not in busy]

    def turn(manager: Manager) -> float:
        # Never booked first (sorted() keeps MANAGERS order among equals), then the longest since booked.
        latest = last_booked.get(manager.phone)
        return latest.timestamp() if latest else float("-inf")

    return sorted(free, key=turn)
