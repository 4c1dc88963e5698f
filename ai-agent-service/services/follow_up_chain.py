"""A follow-up chain's rows: claiming a due chain for the touch a worker writes, recording that touch, and
stopping the chain when the client writes.

A claim is a timestamp, not a lock: claimed_until (the database's time) makes other workers pass the chain
over while Gemini writes, and is also the claim's token, so a worker whose claim expired and was taken over
records nothing. A touch is recorded under the contact's lock, the same lock a reply commits under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import lock_contact
from models import Contact, FollowUp, Message
from service_kit.runtime import autocommit_session
from services.chat_control import BUDGETED, next_day_start, not_paused
from services.client_stance import turn_stance
from services.follow_up_arming import SENT_BY, chain_length, touch_due_at
from services.outbox import bot_message
from utils.timezone_helper import WorkingHours

# How long a claimed chain is passed over by other workers: longer than Gemini's worst case (three attempts
# of 90 s and their backoff), so only a worker that died leaves a claim to expire.
CLAIM_FOR = timedelta(minutes=10)
# Touches due at one moment go out at most this far apart (spread_due_touches).
TOUCH_SPACING = timedelta(minutes=2)
# After an outage several touches can be overdue at once; they still go out at least this far apart.
MIN_TOUCH_GAP = timedelta(hours=24)
_STOP_REASONS = {"yes": "client_said_yes", "no": "client_said_no"}


@dataclass(frozen=True)
class Claim:
    """A due chain this worker took; `until` (the database's time) is also the claim's token."""

    follow_up_id: int
    contact_id: int
    touch_number: int
    reason: str | None
    silent_since: datetime
    until: datetime


class FollowUpNotFound(LookupError):
    pass


class FollowUpClosed(Exception):
    """The chain is completed (or was just stopped because the client wrote): there is no touch to send."""

    def __init__(self, follow_up_id: int, stop_reason: str | None):
        super().__init__(f"Follow-up {follow_up_id} is already closed: {stop_reason}")


class FollowUpBusy(Exception):
    """Another worker is sending this chain's touch right now."""


class FollowUpDeferred(Exception):
    """The touch waits for another day (the chat's daily send budget is spent)."""


async def stop_open_chain(
    session: AsyncSession, contact_id: int, stance: str | None, now: datetime, *, reason: str | None = None
) -> str:
    """A client message ends the contact's open chain; a clear yes or no is recorded as such (or `reason`:
    the client opted out, a person took over). Returns the stop reason."""
    reason = reason or _STOP_REASONS.get(stance or "", "client_responded")
    stopped = await session.scalars(
        update(FollowUp)
        .where(FollowUp.contact_id == contact_id, FollowUp.is_completed.is_(False))
        .values(is_completed=True, stop_reason=reason, stopped_at=now, next_touch_at=None)
        .returning(FollowUp.id)
    )
    for follow_up_id in stopped:
        logger.info("Follow-up {} stopped: {}", follow_up_id, reason)
    return reason


def unclaimed() -> ColumnElement[bool]:
    return or_(FollowUp.claimed_until.is_(None), FollowUp.claimed_until <= func.now())


def due_chain(now: datetime, passed_over: set[int]) -> Select:
    query = (
        select(FollowUp)
        .join(Contact, Contact.id == FollowUp.contact_id)
        .where(
            FollowUp.is_completed.is_(False),
            FollowUp.next_touch_at <= now,
            Contact.is_client.is_(True),
            Contact.opted_out_at.is_(None),
            not_paused(now),
            unclaimed(),
        )
        .order_by(FollowUp.next_touch_at, FollowUp.id)
        .limit(1)
        .with_for_update(of=FollowUp, skip_locked=True)
    )
    return query.where(FollowUp.id.not_in(passed_over)) if passed_over else query


async def claim_chain(session: AsyncSession, chain: FollowUp, now: datetime) -> Claim | FollowUpClosed:
    """Claims the locked chain until CLAIM_FOR from now, or stops it if the client has written since the
    silence began (then no Gemini call is spent on it)."""
    silent_since = chain.silent_since or chain.created_at
    stopped = await _stopped_by_client(session, chain.contact_id, silent_since, now)
    if stopped is not None:
        return FollowUpClosed(chain.id, stopped)
    until = await session.scalar(
        update(FollowUp)
        .where(FollowUp.id == chain.id)
        .values(claimed_until=func.now() + CLAIM_FOR)
        .returning(FollowUp.claimed_until)
    )
    return Claim(chain.id, chain.contact_id, chain.touch_number, chain.reason, silent_since, until)


async def why_not_claimable(session: AsyncSession, follow_up_id: int) -> Exception:
    chain = await session.get(FollowUp, follow_up_id)
    if chain is None:
        return FollowUpNotFound(f"No follow-up with id {follow_up_id}")
    if chain.is_completed:
        return FollowUpClosed(chain.id, chain.stop_reason)
    return FollowUpBusy(f"Follow-up {follow_up_id} is being sent right now")


async def release(sessions: async_sessionmaker[AsyncSession], claim: Claim) -> None:
    """Gives the chain back for the next pass (its touch could not be written now)."""
    async with autocommit_session(sessions) as session:
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id == claim.follow_up_id, FollowUp.claimed_until == claim.until)
            .values(claimed_until=None)
        )


async def spread_due_touches(session: AsyncSession, now: datetime, hours: WorkingHours) -> None:
    """Touches due at one moment (a weekend's worth on Monday 10:00) go out spread over what is left of the
    working day, at most TOUCH_SPACING apart, instead of all at once: a burst of sends is what gets a
    WhatsApp number banned."""
    due = (
        await session.scalars(
            select(FollowUp)
            .where(FollowUp.is_completed.is_(False), FollowUp.next_touch_at <= now, unclaimed())
            .order_by(FollowUp.next_touch_at, FollowUp.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if len(due) < 2:
        return
    left_today = hours.working_end(now) - now
    spacing = min(TOUCH_SPACING, left_today / len(due)) if left_today > timedelta(0) else TOUCH_SPACING
    for position, chain in enumerate(due[1:], start=1):
        chain.next_touch_at = now + position * spacing
    logger.info("{} touches due at once: spread {} apart", len(due), spacing)


async def record_touch(
    sessions: async_sessionmaker[AsyncSession],
    claim: Claim,
    contact: Contact,
    text: str,
    now: datetime,
    *,
    intervals: Sequence[int],
    hours: WorkingHours,
    messages_per_day: int,
) -> tuple[FollowUp, Message]:
    """Stores the touch and advances the chain in one short transaction, or raises why not (a stop by the
    client's message is committed first)."""
    async with sessions.begin() as session:
        # The lock a reply commits under: a touch and a reply to one client are stored one after the other.
        await lock_contact(session, contact.phone_number)
        chain = await session.get_one(FollowUp, claim.follow_up_id, with_for_update=True)
        refusal = await _refusal(session, chain, claim, now) or await _over_budget(
            session, chain, now, hours, messages_per_day
        )
        if refusal is None:
            message = _add_touch(session, chain, contact, text, now, intervals, hours)
            await session.flush()
            logger.info("Follow-up {} touch {} to {}", chain.id, claim.touch_number, contact.phone_number)
            return chain, message
    raise refusal


async def _refusal(session: AsyncSession, chain: FollowUp, claim: Claim, now: datetime) -> Exception | None:
    """Why the written touch must not be stored: the chain closed, another worker took it over after the claim
    expired, or the client wrote while Gemini was busy (the chain is stopped here)."""
    if chain.is_completed:
        return FollowUpClosed(chain.id, chain.stop_reason)
    if chain.claimed_until != claim.until:
        return FollowUpBusy(f"Follow-up {chain.id} was taken over by another worker")
    stopped = await _stopped_by_client(session, chain.contact_id, claim.silent_since, now)
    return FollowUpClosed(chain.id, stopped) if stopped is not None else None


async def _over_budget(
    session: AsyncSession, chain: FollowUp, now: datetime, hours: WorkingHours, messages_per_day: int
) -> Exception | None:
    """The chat's bot messages today are spent: the touch waits for the next working morning."""
    sent_today = await session.scalar(
        select(func.count()).where(
            Message.contact_id == chain.contact_id,
            Message.is_from_bot.is_(True),
            Message.sent_by.in_(BUDGETED),
            Message.timestamp >= hours.day_start(now),
        )
    )
    if (sent_today or 0) < messages_per_day:
        return None
    chain.next_touch_at = hours.next_working_start(next_day_start(hours, now))
    chain.claimed_until = None
    return FollowUpDeferred(f"Follow-up {chain.id}: the chat's send budget for today is spent")


def _add_touch(
    session: AsyncSession,
    chain: FollowUp,
    contact: Contact,
    text: str,
    now: datetime,
    intervals: Sequence[int],
    hours: WorkingHours,
) -> Message:
    """The touch as an unpublished bot message; the chain moves on to its next touch or completes."""
    touch = chain.touch_number
    message = bot_message(contact, text, now, sent_by=SENT_BY, outgoing_id=f"follow-up-{chain.id}-{touch}")
    session.add(message)
    chain.last_touch_at = now
    chain.claimed_until = None
    if touch >= chain_length(intervals):
        chain.is_completed = True
        chain.stop_reason = "completed_5_touches"
        chain.stopped_at = now
        chain.next_touch_at = None
    else:
        chain.touch_number = touch + 1
        silent_since = chain.silent_since or chain.created_at
        earliest = hours.next_working_start(now + MIN_TOUCH_GAP)
        chain.next_touch_at = max(touch_due_at(silent_since, touch + 1, intervals, hours), earliest)
    return message


async def _stopped_by_client(
    session: AsyncSession, contact_id: int, silent_since: datetime, now: datetime
) -> str | None:
    """Stops the contact's open chain if the client has written since `silent_since`; the stop reason."""
    written = (
        await session.scalars(
            select(Message)
            .where(
                Message.contact_id == contact_id,
                Message.is_from_bot.is_(False),
                Message.timestamp > silent_since,
            )
            .order_by(Message.timestamp, Message.id)
        )
    ).all()
    if not written:
        return None
    return await stop_open_chain(session, contact_id, turn_stance(written), now)
