"""A contact's decision log: for each client message, what the product did with it and why, as the API
(GET /contacts/{phone}/decisions) and the console show it. Most turns write a Decision row as they commit;
what no row is written for is told here from the messages themselves:

- covered: answered by a reply to a later message of the same turn, or by a person on the business phone;
- not_a_client: the contact is known not to be a client, so the message was stored and never answered;
- pending: nothing has been decided yet (the message is being answered right now, or waits for a retry).

A message whose handling failed for good gets its row here too (record_dead_letter), written where the agent
gives it up to incoming_messages.dlq.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from models import Contact, Decision, Message
from models.decision import DEAD_LETTERED, NOT_A_CLIENT
from models.message import OPERATOR

COVERED = "covered"
PENDING = "pending"


@dataclass(frozen=True)
class LoggedDecision:
    id: int | None  # the Decision row's; None for the kinds told from the messages
    kind: str
    reason: str | None
    created_at: datetime
    message_pk: int  # the client message's row
    message_id: str | None  # its WhatsApp id
    client_text: str | None
    model_text: str | None  # what the model wanted to send, when the code sent something else
    sent_text: str | None  # what went to the client for it (the covering reply, for a covered message)


async def decision_log(
    session: AsyncSession, contact: Contact, *, limit: int, offset: int = 0
) -> tuple[list[LoggedDecision], int]:
    """The contact's decisions, newest client message first, and how many there are in all."""
    client, reply = aliased(Message), aliased(Message)
    covering = (
        # The business's first message after the client's, the reply stored in the same turn first.
        select(Message.message_text, Message.sent_by)
        .where(
            Message.contact_id == client.contact_id,
            Message.is_from_bot.is_(True),
            Message.id > client.id,
            Decision.id.is_(None),
            client.answered_at.is_not(None),
        )
        .order_by((Message.timestamp == client.answered_at).desc(), Message.id)
        .limit(1)
        .lateral("covering")
    )
    rows = (
        select(
            Decision.id,
            Decision.kind,
            Decision.reason,
            Decision.created_at,
            Decision.model_text,
            client.id.label("message_pk"),
            client.message_id,
            client.message_text,
            client.timestamp,
            client.answered_at,
            reply.message_text.label("reply_text"),
            covering.c.message_text.label("covering_text"),
            covering.c.sent_by.label("covering_by"),
        )
        .select_from(client)
        .outerjoin(Decision, Decision.message_id == client.id)
        .outerjoin(reply, reply.id == Decision.reply_id)
        .outerjoin(covering, true())
        .where(client.contact_id == contact.id, client.is_from_bot.is_(False))
    )
    total = await session.scalar(select(func.count()).select_from(rows.subquery()))
    page = await session.execute(
        rows.order_by(client.id.desc(), Decision.id.desc().nulls_first()).limit(limit).offset(offset)
    )
    return [_logged(row, contact) for row in page], total or 0


def _logged(row, contact: Contact) -> LoggedDecision:
    kind, reason, at, sent = row.kind, row.reason, row.created_at, row.reply_text
    if row.id is None:
        if row.answered_at is not None:
            kind, at, sent = COVERED, row.answered_at, row.covering_text
            by_person = row.covering_by == OPERATOR
            reason = "answered by a person" if by_person else "covered by the reply to the same turn"
        elif contact.is_client is False:
            kind, at, reason = NOT_A_CLIENT, row.timestamp, "not a client: stored, never answered"
        else:
            kind, at, reason = PENDING, row.timestamp, "nothing decided yet"
    return LoggedDecision(
        id=row.id,
        kind=kind,
        reason=reason,
        created_at=at,
        message_pk=row.message_pk,
        message_id=row.message_id,
        client_text=row.message_text,
        model_text=row.model_text,
        sent_text=sent,
    )


async def record_dead_letter(
    sessions: async_sessionmaker[AsyncSession], message_id: str, reason: str, now: datetime
) -> None:
    """Puts a client message the agent gives up on into its contact's log, with the reason the DLQ gets.
    Nothing to record when the message was never stored (the DLQ alone holds it then); a database that
    is down is logged, not raised: the caller is already failing for a reason of its own."""
    try:
        async with sessions.begin() as session:
            message = await session.scalar(
                select(Message).where(Message.message_id == message_id, Message.is_from_bot.is_(False))
            )
            if message is None:
                return
            session.add(
                Decision(
                    contact_id=message.contact_id,
                    message_id=message.id,
                    kind=DEAD_LETTERED,
                    reason=reason,
                    created_at=now,
                )
            )
    except Exception as exc:
        logger.warning("Could not record that message {} was dead-lettered: {}", message_id, exc)
