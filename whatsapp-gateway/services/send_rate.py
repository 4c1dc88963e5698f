"""MAX_SENDS_PER_MINUTE across the whole WhatsApp number (WhatsApp bans numbers that send too fast), shared by
every sender of every replica: a token bucket in PostgreSQL (send_rate: its tokens and when they were last
refilled), taken in the sender's short claim transaction.

A send that finds no token is given the next free turn: the bucket goes below zero by one, and the send
sleeps until its turn with no transaction or connection held. Turns are handed out in the order the claims
come, so every send waits its turn once; nothing is dropped or dead-lettered for it. The bucket holds one
token at most: sends are spaced evenly, never bursts, so no minute holds more than its share.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.message_log import OUTGOING, SENDING, MessageLog
from models.send_rate import SendRate

BUCKET = "whatsapp_number"
CAPACITY = 1.0


@dataclass(frozen=True)
class Turn:
    at: datetime  # the database's time
    wait_s: float  # from the moment it was given


@dataclass(frozen=True)
class SendQueue:
    """The sends waiting for their turn, and how long the one waiting longest has waited so far."""

    waiting: int
    oldest_wait_s: float


async def take_turn(session: AsyncSession, per_minute: int) -> Turn:
    """The next free turn, in one statement; the bucket row stays locked until the caller's transaction ends
    (milliseconds)."""
    rate = per_minute / 60.0
    elapsed = func.greatest(func.extract("epoch", func.clock_timestamp() - SendRate.refilled_at), 0.0)
    taken = (
        insert(SendRate)  # the row is inserted if it is missing (its first token taken), locked either way
        .values(name=BUCKET, tokens=CAPACITY - 1.0, refilled_at=func.clock_timestamp())
        .on_conflict_do_update(
            index_elements=["name"],
            set_={
                "tokens": func.least(CAPACITY, SendRate.tokens + elapsed * rate) - 1.0,
                "refilled_at": func.greatest(func.clock_timestamp(), SendRate.refilled_at),
            },
        )
        .returning(SendRate.tokens, SendRate.refilled_at)
    )
    tokens, now = (await session.execute(taken)).one()
    wait_s = -tokens / rate if tokens < 0 else 0.0
    return Turn(now + timedelta(seconds=wait_s), wait_s)


async def send_queue(session: AsyncSession) -> SendQueue:
    waiting, first_claimed, now = (
        await session.execute(
            select(func.count(), func.min(MessageLog.claimed_at), func.clock_timestamp()).where(
                MessageLog.queue_status == SENDING,
                MessageLog.direction == OUTGOING,
                MessageLog.turn_at > func.clock_timestamp(),
            )
        )
    ).one()
    if not waiting or first_claimed is None:
        return SendQueue(waiting, 0.0)
    return SendQueue(waiting, round(max((now - first_claimed).total_seconds(), 0.0), 1))
