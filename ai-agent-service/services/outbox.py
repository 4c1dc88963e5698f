"""The messages table's bot rows as service_kit's outbox: a reply or touch is stored first, published after
its commit (service_kit.outbox.relay with its id) and marked published once the broker confirmed it; the
repair loop (run_repair_loop) publishes whatever a crash or a broker outage left pending."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, func, select, update

from models import Contact, Message
from service_kit.publisher import Outgoing

# What an outgoing_messages body is made of.
_COLUMNS = (
    Message.id,
    Message.phone_number,
    Message.message_text,
    Message.reply_to_message_id,
    Message.sent_by,
    Message.outgoing_id,
)


def bot_message(
    contact: Contact,
    text: str,
    now: datetime,
    *,
    sent_by: str,
    outgoing_id: str,
    reply_to_message_id: str | None = None,
) -> Message:
    """A bot message as the outbox keeps it: unpublished until the broker confirms it."""
    return Message(
        contact_id=contact.id,
        phone_number=contact.phone_number,
        message_text=text,
        is_from_bot=True,
        timestamp=now,
        message_type="text",
        sent_by=sent_by,
        outgoing_id=outgoing_id,
        reply_to_message_id=reply_to_message_id,
    )


def outgoing_body(message: Any) -> dict[str, Any]:
    """The outgoing_messages contract body of a stored bot message (a Message or a row of its columns)."""
    body: dict[str, Any] = {
        "phone_number": message.phone_number,
        "message_text": message.message_text,
        "reply_to_message_id": message.reply_to_message_id,
        "mark_as_read": message.sent_by == "reply",
        "outgoing_id": message.outgoing_id,
    }
    if message.sent_by:
        body["sent_by"] = message.sent_by
    return body


@dataclass(frozen=True)
class BotMessageOutbox:
    """service_kit's OutboxTable over messages: bot rows whose published_at is still NULL."""

    queue: str  # the real name of outgoing_messages

    def claim(self, ids: Sequence[int] | None, older_than: timedelta | None, limit: int) -> Select:
        query = (
            select(*_COLUMNS)
            .where(Message.is_from_bot.is_(True), Message.published_at.is_(None))
            .order_by(Message.created_at, Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(Message.id.in_(ids))
        if older_than is not None:
            query = query.where(Message.created_at < func.now() - older_than)
        return query

    def outgoing(self, row: Any) -> Outgoing:
        return Outgoing(self.queue, outgoing_body(row), message_id=row.outgoing_id)

    def row_id(self, row: Any) -> int:
        return row.id

    def mark_published(self, ids: list[int]) -> Update:
        # Core, not the ORM: the relay's session holds no Message objects to keep in step.
        messages = Message.__table__.c
        return update(Message.__table__).where(messages.id.in_(ids)).values(published_at=func.now())
