"""Storing a reply to a client's turn: the checked model text (services/ai_sales_agent.py) or the code's
own (the holding reply, the opt-out confirmation), as an unpublished bot message that covers every client
message of the turn, with the decision that says why. Runs in the contact's locked transaction; the caller
publishes after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from loguru import logger
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Decision, Message
from models.decision import HOLDING, OPTED_OUT
from services.crm_events import CONTACT_OPTED_OUT, opted_out_data, record_crm_event
from services.follow_up_chain import stop_open_chain
from services.opt_out import CONFIRMATION
from services.outbox import bot_message

HOLDING_REPLY = "Спасибо! Уточню детали и вернусь к вам в ближайшее время 😊"


def add_reply(session: AsyncSession, contact: Contact, trigger: Message, text: str, now: datetime) -> Message:
    reply = bot_message(
        contact,
        text,
        now,
        sent_by="reply",
        outgoing_id=f"reply-{trigger.message_id}",
        reply_to_message_id=trigger.message_id,
    )
    session.add(reply)
    return reply


async def cover_pending(session: AsyncSession, pending: Sequence[Message], now: datetime) -> None:
    """The turn's client messages count as answered: no later reply answers them again."""
    await session.execute(
        update(Message).where(Message.id.in_([m.id for m in pending])).values(answered_at=now)
    )


async def store_holding_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    reason: str,
    now: datetime,
) -> Message:
    """The code's holding reply when Gemini gave no usable answer; recorded with why."""
    reply = await _store_code_reply(session, contact, trigger, pending, HOLDING_REPLY, HOLDING, reason, now)
    logger.warning("Holding reply to {}: {}", contact.phone_number, reason)
    return reply


async def store_opt_out(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    language: str,
    now: datetime,
) -> Message:
    """The client asked to stop: one confirmation written by code, the open chain ends, and no chain is
    ever armed again for this contact (until an operator re-enables follow-ups). The CRMs hear of it once."""
    if contact.opted_out_at is None:
        record_crm_event(session, CONTACT_OPTED_OUT, contact, opted_out_data(now, language), occurred_at=now)
    contact.opted_out_at = now
    await stop_open_chain(session, contact.id, None, now, reason=OPTED_OUT)
    text = CONFIRMATION.get(language, CONFIRMATION["ru"])
    reply = await _store_code_reply(
        session, contact, trigger, pending, text, OPTED_OUT, "the client asked to stop", now
    )
    logger.info("Contact {} opted out", contact.phone_number)
    return reply


async def _store_code_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    text: str,
    kind: str,
    reason: str,
    now: datetime,
) -> Message:
    reply = add_reply(session, contact, trigger, text, now)
    await cover_pending(session, pending, now)
    await session.flush()
    session.add(
        Decision(
            contact_id=contact.id,
            message_id=trigger.id,
            reply_id=reply.id,
            kind=kind,
            reason=reason,
            created_at=now,
        )
    )
    return reply
