"""An operator cancels or moves a call (the API, later the console): the client is told by code in their
chat, the call's manager (and a new one) hear about it. The same calendar rules as a booking in a
conversation: a move goes only to a slot with a free manager inside working hours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from config.database import lock_contact
from models import Contact, Message, ScheduledCall
from services.call_booking import NOTES, why_not_bookable
from services.call_calendar import (
    MOVED,
    SCHEDULED,
    CallPolicy,
    book_call,
    cancel_call,
    cancellation_text,
    move_text,
    taken_slots,
)
from services.crm_events import CALL_BOOKED, CALL_CANCELLED, call_data, record_crm_event
from services.notifications import call_booked_text, call_changed_text, manager_for, notify
from services.outbox import bot_message
from utils.timezone_helper import WorkingHours


class CallNotFound(LookupError):
    pass


class CallNotChangeable(Exception):
    """The call is not scheduled any more, or the new time cannot be booked (the reason says which)."""


@dataclass
class CallChange:
    call: ScheduledCall  # the cancelled call, or the new one a move booked
    client_message: Message
    notifications: list[int] = field(default_factory=list)


async def cancel_scheduled_call(
    session: AsyncSession, call_id: int, why: str, now: datetime, hours: WorkingHours, policy: CallPolicy
) -> CallChange:
    call, contact = await _scheduled(session, call_id)
    cancel_call(call, why)
    record_crm_event(session, CALL_CANCELLED, contact, call_data(call, reason=f"отменён оператором: {why}"))
    message = _tell_client(session, contact, cancellation_text(call, hours), f"call-cancelled-{call.id}", now)
    change = CallChange(call, message)
    await _notify(
        session,
        change,
        contact,
        call,
        policy,
        "call_changed",
        call_changed_text(contact, call, hours, "отменён"),
    )
    return change


async def move_scheduled_call(
    session: AsyncSession,
    call_id: int,
    to: datetime,
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
) -> CallChange:
    old, contact = await _scheduled(session, call_id)
    problem = why_not_bookable(
        hours.local(to), hours.local(now), await taken_slots(session, now, policy), hours
    )
    new = (
        None
        if problem
        else await book_call(session, contact, to, now, hours, policy, f"Moved from call {old.id}")
    )
    if new is None:
        free = hours.next_free_slot(max(to, now), await taken_slots(session, now, policy))
        why = NOTES[problem or "taken"]
        raise CallNotChangeable(f"{hours.format(to)} {why}; the next free slot is {hours.format(free)}")
    old.status = MOVED  # book_call moved it in SQL; the loaded row says so too
    # For a CRM a move is the old call cancelled and the new one booked.
    moved_to = f"перенесён оператором на {hours.format_slot(to)}"
    record_crm_event(session, CALL_CANCELLED, contact, call_data(old, reason=moved_to))
    record_crm_event(session, CALL_BOOKED, contact, call_data(new))
    text = move_text(new, contact.phone_number, hours)
    message = _tell_client(session, contact, text, f"call-moved-{old.id}-{new.id}", now)
    change = CallChange(new, message)
    moved = call_changed_text(contact, old, hours, f"перенесён на {hours.format_slot(to)}")
    await _notify(session, change, contact, old, policy, "call_changed", moved)
    await _notify(
        session,
        change,
        contact,
        new,
        policy,
        "call_booked",
        call_booked_text(contact, new, hours, "Созвон перенесён оператором."),
    )
    return change


async def _scheduled(session: AsyncSession, call_id: int) -> tuple[ScheduledCall, Contact]:
    call = await session.get(ScheduledCall, call_id)
    if call is None:
        raise CallNotFound(f"No scheduled call with id {call_id}")
    contact = await session.get_one(Contact, call.contact_id)
    await lock_contact(session, contact.phone_number)
    await session.refresh(call)
    if call.status != SCHEDULED:
        raise CallNotChangeable(f"Call {call_id} is {call.status}, not scheduled")
    return call, contact


def _tell_client(
    session: AsyncSession, contact: Contact, text: str, outgoing_id: str, now: datetime
) -> Message:
    message = bot_message(contact, text, now, sent_by="manual", outgoing_id=outgoing_id)
    session.add(message)
    return message


async def _notify(
    session: AsyncSession,
    change: CallChange,
    contact: Contact,
    call: ScheduledCall,
    policy: CallPolicy,
    kind: str,
    text: str,
) -> None:
    manager = manager_for(contact, policy.managers, call)
    if manager is None:
        return
    written = await notify(
        session,
        manager,
        kind,
        text,
        f"{kind}-{call.id}-{change.client_message.outgoing_id}",
        contact_id=contact.id,
        call_id=call.id,
    )
    change.notifications += [written] if written else []
