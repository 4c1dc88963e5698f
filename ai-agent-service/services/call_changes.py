"""An operator books, cancels or moves a call (the API, the console): the client is told by code in their
chat, the call's manager (and a new one) hear about it. The same calendar rules as a booking in a
conversation: a booking or a move goes only to a slot with a free manager inside working hours."""

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
    confirmation_text,
    move_text,
    scheduled_calls_of,
    taken_slots,
)
from services.crm_events import CALL_BOOKED, CALL_CANCELLED, call_data, record_crm_event
from services.follow_up_chain import stop_open_chain
from services.language import language_of
from services.notifications import call_booked_text, call_changed_text, manager_for, notify
from services.outbox import bot_message
from utils.timezone_helper import WorkingHours

# The follow-up chain's stop_reason when an operator books the client a call.
CALL_BOOKED_BY_OPERATOR = "call_booked"


class CallNotFound(LookupError):
    pass


class CallNotChangeable(Exception):
    """The call is not scheduled any more, or the new time cannot be booked: then `problem` says why (a key
    of call_booking.NOTES) and `next_free` is the nearest slot that can."""

    def __init__(self, message: str, *, problem: str | None = None, next_free: datetime | None = None):
        super().__init__(message)
        self.problem = problem
        self.next_free = next_free


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
    text = cancellation_text(call, hours, language_of(contact))
    message = _tell_client(session, contact, text, f"call-cancelled-{call.id}", now)
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
    new = await _book_in_calendar(session, contact, to, now, hours, policy, f"Moved from call {old.id}")
    _record_moves(session, contact, [old], new, to, hours)
    text = move_text(new, contact.phone_number, hours, language_of(contact))
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


async def book_call_for_client(
    session: AsyncSession,
    contact: Contact,
    at: datetime,
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
) -> CallChange:
    """Books a call for the (locked) contact at `at`: the client gets the code's confirmation, the manager
    the booking, the CRMs call.booked; a call the client had already is moved to this one, and the
    follow-up chain ends (a client with a call is not chased)."""
    replaced = await scheduled_calls_of(session, contact.id, now)
    new = await _book_in_calendar(session, contact, at, now, hours, policy, "Booked by an operator")
    _record_moves(session, contact, replaced, new, at, hours)
    await stop_open_chain(session, contact.id, None, now, reason=CALL_BOOKED_BY_OPERATOR)
    text = confirmation_text(new, contact.phone_number, hours, language_of(contact))
    change = CallChange(new, _tell_client(session, contact, text, f"call-booked-by-operator-{new.id}", now))
    for old in replaced:
        moved = call_changed_text(contact, old, hours, f"перенесён на {hours.format_slot(at)}")
        await _notify(session, change, contact, old, policy, "call_changed", moved)
    booked = call_booked_text(contact, new, hours, "Созвон назначен оператором.")
    await _notify(session, change, contact, new, policy, "call_booked", booked)
    return change


def _record_moves(
    session: AsyncSession,
    contact: Contact,
    moved: list[ScheduledCall],
    new: ScheduledCall,
    at: datetime,
    hours: WorkingHours,
) -> None:
    """The loaded `moved` calls say what book_call did to them in SQL; for the CRMs a move is each old call
    cancelled and the new one booked."""
    moved_to = f"перенесён оператором на {hours.format_slot(at)}"
    for old in moved:
        old.status = MOVED
        record_crm_event(session, CALL_CANCELLED, contact, call_data(old, reason=moved_to))
    record_crm_event(session, CALL_BOOKED, contact, call_data(new))


async def _book_in_calendar(
    session: AsyncSession,
    contact: Contact,
    at: datetime,
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
    note: str,
) -> ScheduledCall:
    """The booked call, or CallNotChangeable saying why `at` cannot be booked and what can."""
    taken = await taken_slots(session, now, policy)
    problem = why_not_bookable(hours.local(at), hours.local(now), taken, hours)
    new = None if problem else await book_call(session, contact, at, now, hours, policy, note)
    if new is None:
        problem = problem or "taken"  # another booking took the last free manager a moment ago
        free = hours.next_free_slot(max(at, now), taken | {at})
        raise CallNotChangeable(
            f"{hours.format(at)} {NOTES[problem]}; the next free slot is {hours.format(free)}",
            problem=problem,
            next_free=free,
        )
    return new


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
