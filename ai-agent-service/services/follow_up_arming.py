"""Arming the follow-up chain: which clients went silent (or answered vaguely) and need touches.

Silence is measured from the bot's last message that is not itself a touch, and only once the conversation
has been idle for a while; a client whose last word was a clear yes or no, or who has a call booked, is
never chased.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import Select, join, or_, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Contact, FollowUp, Message, ScheduledCall
from services.chat_control import not_paused
from services.client_stance import turn_stance
from utils.timezone_helper import WorkingHours

MAX_TOUCHES = 5  # the spec's chain; the follow_ups.touch_number check allows no more
# "Never while the conversation is active": the bot's last message must be at least this old.
CONVERSATION_IDLE = timedelta(hours=1)
ARM_BATCH = 500
# (namespace, key) of the advisory lock that lets one replica at a time arm chains.
_ARM_LOCK = (7202, 1)
SENT_BY = "follow_up"


def chain_length(intervals: Sequence[int]) -> int:
    return min(len(intervals), MAX_TOUCHES)


def touch_due_at(
    silent_since: datetime, touch: int, intervals: Sequence[int], hours: WorkingHours
) -> datetime:
    moment = silent_since + timedelta(hours=intervals[touch - 1])
    return hours.next_working_start(moment)


async def arm_follow_ups(
    session: AsyncSession, *, intervals: Sequence[int], hours: WorkingHours, now: datetime
) -> list[FollowUp]:
    """Starts a chain for every client who left the bot's last message unanswered (see the module doc)."""
    namespace, key = _ARM_LOCK
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:namespace, :key)"), {"namespace": namespace, "key": key}
    )
    if not locked:
        return []  # another replica is arming right now
    oldest = now - timedelta(hours=intervals[chain_length(intervals) - 1])
    armed = []
    for contact_id, bot_id, silent_since, model_stance in await session.execute(
        _arming_candidates(now, oldest)
    ):
        stance = model_stance or turn_stance(await _client_turn(session, contact_id, bot_id))
        if stance in ("yes", "no"):
            continue  # a clear yes or no needs no chasing
        chain = FollowUp(
            contact_id=contact_id,
            touch_number=1,
            silent_since=silent_since,
            next_touch_at=touch_due_at(silent_since, 1, intervals, hours),
            reason="vague_answer" if stance == "undecided" else "no_response",
        )
        session.add(chain)
        armed.append(chain)
    await session.flush()
    for chain in armed:
        logger.info("Follow-up armed for contact {}: {}", chain.contact_id, chain.reason)
    return armed


def _arming_candidates(now: datetime, oldest: datetime) -> Select:
    """Per silent client: contact id, the bot message's id and time, the model's stance on the last turn.

    Turns are ordered by row id, the order the agent stored them in: WhatsApp stamps a client's message to
    the second, so "нет" written right after a reply can carry an earlier time than the reply itself.
    """
    newest = (  # the newest message that is not a touch: silence is measured from the bot's own words
        select(Message.id, Message.timestamp, Message.is_from_bot, Message.published_at)
        .where(Message.contact_id == Contact.id, Message.sent_by.is_distinct_from(SENT_BY))
        .order_by(Message.id.desc())
        .limit(1)
        .lateral("newest")
    )
    client, later_bot = aliased(Message), aliased(Message)
    bot_in_between = (
        select(later_bot.id)
        .where(
            later_bot.contact_id == Contact.id,
            later_bot.is_from_bot,
            later_bot.id > client.id,
            later_bot.id < newest.c.id,
        )
        .correlate_except(later_bot)
        .exists()
    )
    last_turn = (  # the sales agent's newest verdict on the client's messages right before that bot message
        select(client.stance)
        .where(
            client.contact_id == Contact.id,
            client.is_from_bot.is_(False),
            client.stance.is_not(None),
            client.id < newest.c.id,
            ~bot_in_between,
        )
        .order_by(client.id.desc())
        .limit(1)
        .lateral("last_turn")
    )
    chain_exists = (
        select(FollowUp.id)
        .where(
            FollowUp.contact_id == Contact.id,
            or_(FollowUp.is_completed.is_(False), FollowUp.silent_since == newest.c.timestamp),
        )
        .exists()
    )
    call_booked = (
        select(ScheduledCall.id)
        .where(
            ScheduledCall.contact_id == Contact.id,
            ScheduledCall.status == "scheduled",
            ScheduledCall.scheduled_at > now,
        )
        .exists()
    )
    return (
        select(Contact.id, newest.c.id, newest.c.timestamp, last_turn.c.stance)
        .select_from(join(Contact, newest, true()).outerjoin(last_turn, true()))
        .where(
            Contact.is_client.is_(True),
            Contact.opted_out_at.is_(None),  # a client who asked to stop is never chased again
            not_paused(now),
            newest.c.is_from_bot.is_(True),
            newest.c.published_at.is_not(None),
            newest.c.timestamp <= now - CONVERSATION_IDLE,
            newest.c.timestamp > oldest,  # a silence older than the whole chain is not chased
            or_(last_turn.c.stance.is_(None), last_turn.c.stance.not_in(["yes", "no"])),
            ~chain_exists,
            ~call_booked,
        )
        .order_by(newest.c.timestamp)
        .limit(ARM_BATCH)
    )


async def _client_turn(session: AsyncSession, contact_id: int, bot_id: int) -> list[Message]:
    """The client's messages stored between the bot's message `bot_id` and the one before it, oldest first."""
    rows = await session.scalars(
        select(Message)
        .where(Message.contact_id == contact_id, Message.id < bot_id)
        .order_by(Message.id.desc())
        .limit(20)
    )
    turn = []
    for message in rows:
        if message.is_from_bot:
            break
        turn.append(message)
    return turn[::-1]
