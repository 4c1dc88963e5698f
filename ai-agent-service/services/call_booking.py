"""Call booking: code, not the model, decides whether a proposed time is bookable, and what the client is
told about it. A reply that names a call time or claims a booking goes out only if that time is one the code
just booked or offered, or a call the client already has; otherwise the code's own question or offer does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, ScheduledCall
from services.call_calendar import (
    CallPolicy,
    book_call,
    cancel_call,
    confirmation_text,
    scheduled_calls_of,
    taken_slots,
)
from services.call_mentions import call_mentions, only_names
from services.language import KK, RU, in_language, language_of, slot_text
from utils.timezone_helper import WorkingHours

NOTES = {
    "outside": "is outside working hours",
    "taken": "is taken",
    "past": "has passed",
    "off_grid": "is off the half-hour grid",
}
# What the client is told, in their language: {slot} is a slot as language.slot_text writes it.
ASK_TIME = {
    RU: "Какое время вам удобно? Мы работаем пн–пт {start}:00–{end}:00 по Астане 📞",
    KK: "Сізге қай уақыт ыңғайлы? Біз дүйсенбі–жұма күндері {start}:00–{end}:00 аралығында жұмыс істейміз "
    "(Астана уақытымен) 📞",
}
OFFER = {
    RU: "Могу предложить {slot} по времени Астаны. Подходит?",
    KK: "Астана уақытымен {slot} ұсына аламын. Сізге ыңғайлы ма?",
}
OFFER_INSTEAD = {
    RU: "К сожалению, {reason}. Могу предложить {slot} по времени Астаны. Подходит?",
    KK: "Өкінішке қарай, {reason}. Астана уақытымен {slot} ұсына аламын. Сізге ыңғайлы ма?",
}
OFFER_AFTER_CANNOT = {
    RU: "Понял вас, перенесём созвон. Могу предложить {slot} по Астане. Подходит?",
    KK: "Түсіндім, қоңырауды басқа уақытқа ауыстырайық. Астана уақытымен {slot} ұсына аламын. "
    "Сізге ыңғайлы ма?",
}
WHY_NOT = {
    "outside": {
        RU: "в это время мы не работаем: созвоны проходят Пн–Пт с {start}:00 до {end}:00",
        KK: "бұл уақытта біз жұмыс істемейміз: қоңыраулар дүйсенбі–жұма күндері {start}:00–{end}:00 "
        "аралығында өтеді",
    },
    "taken": {RU: "это время уже занято", KK: "бұл уақыт бос емес"},
    "past": {RU: "это время уже прошло", KK: "бұл уақыт өтіп кетті"},
    "off_grid": {
        RU: "созвоны начинаются только в начале часа или в половине",
        KK: "қоңыраулар сағаттың басында немесе жартысында ғана басталады",
    },
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
    replaced: list[ScheduledCall] = field(default_factory=list)  # the client's calls the booking moved
    cancelled: list[ScheduledCall] = field(default_factory=list)  # calls the client cannot make
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


class CallAnswer(Protocol):
    """What the sales model said about a call (services/ai_sales_agent.SalesAnswer)."""

    agreed_to_call: bool
    proposed_call_time: str | None
    confirmed_call_time: bool
    cannot_make_it: bool


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
    answer: CallAnswer,
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
    source_message_id: str,
) -> CallDecision:
    language = language_of(contact)
    ask = in_language(ASK_TIME, language).format(start=hours.start_hour, end=hours.end_hour)
    upcoming = await scheduled_calls_of(session, contact.id, now)
    existing = [call.scheduled_at for call in upcoming]
    proposed = parse_proposed_time(answer.proposed_call_time, hours) if answer.proposed_call_time else None
    if proposed is None and answer.cannot_make_it and upcoming:
        return await _offer_another_slot(session, upcoming, now, hours, policy, language)
    if proposed is None:
        if not answer.proposed_call_time or not (answer.agreed_to_call or answer.confirmed_call_time):
            return CallDecision(allowed=existing, safe_reply=ask)
        problem = f"proposed_call_time {answer.proposed_call_time!r} is not a time"
        logger.warning("Asking for a time instead: {}", problem)
        return CallDecision(reply=ask, allowed=existing, safe_reply=ask, guard=problem)

    taken = await taken_slots(session, now, policy)
    problem = why_not_bookable(proposed, hours.local(now), taken, hours)
    if problem is None:
        if not answer.confirmed_call_time:
            # The client has not accepted this very time yet: the model may ask about it, nothing more.
            offer = in_language(OFFER, language).format(slot=slot_text(proposed, hours, language))
            return CallDecision(allowed=[*existing, proposed], safe_reply=offer)
        note = f"Booked by the AI sales agent (message {source_message_id})"
        booked = await book_call(session, contact, proposed, now, hours, policy, note)
        if booked is not None:
            return CallDecision(
                reply=confirmation_text(booked, contact.phone_number, hours, language),
                booked=booked,
                replaced=upcoming,
                allowed=[proposed],
            )
        taken.add(proposed)  # another client took the last free manager a moment ago
        problem = "taken"

    slot = hours.next_free_slot(max(proposed, hours.local(now)), taken)
    reason = why_not_text(problem, hours, language)
    offer = in_language(OFFER_INSTEAD, language).format(reason=reason, slot=slot_text(slot, hours, language))
    return CallDecision(
        reply=offer,
        offered_slot=slot,
        allowed=[*existing, slot],
        safe_reply=offer,
        note=f"{hours.format(proposed)} {NOTES[problem]}: offered {hours.format(slot)}",
    )


async def _offer_another_slot(
    session: AsyncSession,
    upcoming: list[ScheduledCall],
    now: datetime,
    hours: WorkingHours,
    policy: CallPolicy,
    language: str,
) -> CallDecision:
    """The client cannot make their call and named no other time: it is cancelled, and the code offers the
    next free slot after it (booked when the client accepts)."""
    for call in upcoming:
        cancel_call(call, "The client cannot make it")
    taken = await taken_slots(session, now, policy)
    after = max(upcoming[0].scheduled_at + timedelta(minutes=hours.slot_minutes), hours.local(now))
    slot = hours.next_free_slot(after, taken)
    offer = in_language(OFFER_AFTER_CANNOT, language).format(slot=slot_text(slot, hours, language))
    return CallDecision(
        reply=offer,
        offered_slot=slot,
        cancelled=upcoming,
        allowed=[slot],
        safe_reply=offer,
        note=f"the client cannot make {hours.format(upcoming[0].scheduled_at)}: offered {hours.format(slot)}",
    )


def why_not_text(problem: str, hours: WorkingHours, language: str = RU) -> str:
    """Why a time cannot be booked, in the words the client (or an operator, in Russian) reads."""
    return in_language(WHY_NOT[problem], language).format(start=hours.start_hour, end=hours.end_hour)


def why_not_bookable(
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
