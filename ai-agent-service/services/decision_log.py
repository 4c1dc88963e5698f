"""A contact's decision log: for each client message, what the product did with it and why, as the API
(GET /contacts/{phone}/decisions) and the console show it. Most turns write a Decision row as they commit;
what no row is written for is told here from the messages themselves:

- covered: answered by a reply to another message of the same turn, or by a person (on the business phone or
  in the console), also after its own turn left it unclassified or it was dead-lettered;
- not_a_client: the contact is known not to be a client, so the message was stored and never answered;
- pending: nothing has been decided yet (the message is being answered right now, or waits for a retry).

A message whose handling failed for good gets its row here too (record_dead_letter), written where the agent
gives it up to incoming_messages.dlq.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    case,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from models import Contact, Decision, Message
from models.decision import (
    DEAD_LETTERED,
    GUARDED,
    HANDED_OVER,
    HOLDING,
    LOOP_SUSPECTED,
    NOT_A_CLIENT,
    OPTED_OUT,
    PAUSED,
    REPLIED,
    SEND_BUDGET,
)
from models.message import OPERATOR

COVERED = "covered"
PENDING = "pending"
# The kinds whose turn settled the message (answered it, or left it to a person): no later reply covers it.
SETTLED = (REPLIED, GUARDED, HANDED_OVER, HOLDING, OPTED_OUT, PAUSED, SEND_BUDGET, LOOP_SUSPECTED)
BY_PERSON = "answered by a person"
BY_REPLY = "covered by the reply to the same turn"


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
    """The contact's decisions, newest client message first (a message's own latest first), and how many
    there are in all. A message left unclassified or dead-lettered and answered later has both entries."""
    log = union_all(_recorded(contact), _covered(contact), _undecided(contact)).subquery("log")
    total = await session.scalar(select(func.count()).select_from(log))
    rows = await session.execute(
        select(log)
        .order_by(log.c.message_pk.desc(), log.c.derived.desc(), log.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_logged(row) for row in rows], total or 0


def _recorded(contact: Contact) -> Select:
    client, reply = aliased(Message), aliased(Message)
    return (
        select(
            Decision.id,
            Decision.kind,
            Decision.reason,
            Decision.created_at,
            Decision.model_text,
            reply.message_text.label("sent_text"),
            *_message_columns(client),
            literal(False).label("derived"),
        )
        .join(client, client.id == Decision.message_id)
        .outerjoin(reply, reply.id == Decision.reply_id)
        .where(Decision.contact_id == contact.id)
    )


def _covered(contact: Contact) -> Select:
    """Client messages a later reply or a person answered, whose own turn did not settle them."""
    client, business = aliased(Message), aliased(Message)
    covering = (
        # The business's first message after the client's, the reply stored in the same turn first.
        select(business.message_text, business.sent_by)
        .where(
            business.contact_id == client.contact_id, business.is_from_bot.is_(True), business.id > client.id
        )
        .order_by((business.timestamp == client.answered_at).desc(), business.id)
        .limit(1)
        .lateral("covering")
    )
    settled = select(Decision.id).where(Decision.message_id == client.id, Decision.kind.in_(SETTLED)).exists()
    return (
        select(
            null().label("id"),
            literal(COVERED).label("kind"),
            case((covering.c.sent_by == OPERATOR, BY_PERSON), else_=BY_REPLY).label("reason"),
            client.answered_at.label("created_at"),
            null().label("model_text"),
            covering.c.message_text.label("sent_text"),
            *_message_columns(client),
            literal(True).label("derived"),
        )
        .select_from(client)
        .outerjoin(covering, true())
        .where(_clients_messages(client, contact), client.answered_at.is_not(None), ~settled)
    )


def _undecided(contact: Contact) -> Select:
    """Client messages with no decision and no answer: a known non-client's, or not decided yet."""
    client = aliased(Message)
    kind, reason = (
        (NOT_A_CLIENT, "not a client: stored, never answered")
        if contact.is_client is False
        else (PENDING, "nothing decided yet")
    )
    decided = select(Decision.id).where(Decision.message_id == client.id).exists()
    return select(
        null().label("id"),
        literal(kind).label("kind"),
        literal(reason).label("reason"),
        client.timestamp.label("created_at"),
        null().label("model_text"),
        null().label("sent_text"),
        *_message_columns(client),
        literal(True).label("derived"),
    ).where(_clients_messages(client, contact), client.answered_at.is_(None), ~decided)


def _message_columns(client: type[Message]) -> list:
    return [
        client.id.label("message_pk"),
        client.message_id.label("message_id"),
        client.message_text.label("client_text"),
    ]


def _clients_messages(client: type[Message], contact: Contact) -> ColumnElement[bool]:
    return and_(client.contact_id == contact.id, client.is_from_bot.is_(False))


def _logged(row: Row) -> LoggedDecision:
    return LoggedDecision(
        id=row.id,
        kind=row.kind,
        reason=row.reason,
        created_at=row.created_at,
        message_pk=row.message_pk,
        message_id=row.message_id,
        client_text=row.client_text,
        model_text=row.model_text,
        sent_text=row.sent_text,
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
