"""The incoming_messages body (contracts/incoming_messages.schema.json; tests/test_contracts.py keeps the
two in step) and how it is stored: the contact upserted, the message inserted once however often delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message
from models.message import OPERATOR
from services.language import detect_language

VOICE_PREFIX = "[ТРАНСКРИБАЦИЯ] "


class ContactInfo(BaseModel):
    FirstName: str | None = None
    FullName: str | None = None
    PushName: str | None = None
    BusinessName: str | None = None


class IncomingMessage(BaseModel):
    """A body of incoming_messages (contracts/incoming_messages.schema.json)."""

    message_id: str
    chat_id: str
    phone_number: str
    message_text: str
    is_voice: bool
    timestamp: datetime
    sender_name: str | None = None
    voice_url: str | None = None
    original_voice_url: str | None = None
    contact_info: ContactInfo | None = None
    message_type: str | None = None
    sender: Literal["client", "operator"] = "client"  # operator: typed on the business phone
    voice_too_long: bool = False  # a voice note over the gateway's limits: not transcribed


def _upsert_contact(upsert: Insert) -> Insert:
    fresh = upsert.excluded
    return upsert.on_conflict_do_update(
        index_elements=[Contact.phone_number],
        set_={
            "name": func.coalesce(fresh.name, Contact.name),
            "full_name": func.coalesce(fresh.full_name, Contact.full_name),
            "business_name": func.coalesce(fresh.business_name, Contact.business_name),
            "last_message_at": func.greatest(Contact.last_message_at, fresh.last_message_at),
            # The newest message that says which language wins, whatever order messages are stored in.
            "language": case(
                (
                    fresh.last_message_at >= func.coalesce(Contact.last_message_at, fresh.last_message_at),
                    func.coalesce(fresh.language, Contact.language),
                ),
                else_=func.coalesce(Contact.language, fresh.language),
            ),
            "updated_at": func.now(),
        },
    ).returning(Contact.id, Contact.is_client)


_CONTACT_FIELDS = ("phone_number", "name", "full_name", "business_name", "last_message_at", "language")
_MESSAGE_FIELDS = (
    "phone_number",
    "message_id",
    "message_text",
    "is_from_bot",
    "is_voice",
    "voice_transcription",
    "timestamp",
    "message_type",
)


def _store_client_message() -> Select:
    """The contact upserted and the message inserted in one statement (one round trip, atomic on its own):
    (contact id, is_client, message row id or NULL when the message was stored before)."""
    contact = _upsert_contact(
        insert(Contact).values(
            {name: bindparam(name, type_=Contact.__table__.c[name].type) for name in _CONTACT_FIELDS}
        )
    ).cte("contact")
    values = [bindparam(name, type_=Message.__table__.c[name].type) for name in _MESSAGE_FIELDS]
    message = (
        insert(Message)
        .from_select(["contact_id", *_MESSAGE_FIELDS], select(contact.c.id, *values))
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(Message.id)
        .cte("message")
    )
    return select(contact.c.id, contact.c.is_client, select(message.c.id).scalar_subquery())


# Built once, executed with each message's values: building them per message cost more than running them.
_UPSERT_CONTACT = _upsert_contact(insert(Contact))
_INSERT_MESSAGE = insert(Message).on_conflict_do_nothing(index_elements=["message_id"]).returning(Message.id)
_STORE_CLIENT_MESSAGE = _store_client_message()


async def store_incoming(
    session: AsyncSession, incoming: IncomingMessage
) -> tuple[int, int, bool | None] | None:
    """Upserts the contact and stores the message, in one statement: needs no transaction of its own.

    Returns (contact id, message row id, is_client), or None for a redelivery that needs nothing more.
    """
    info = incoming.contact_info or ContactInfo()
    text = incoming.message_text
    values = {
        "phone_number": incoming.phone_number,
        "name": info.FirstName or info.PushName or incoming.sender_name,
        "full_name": info.FullName,
        "business_name": info.BusinessName,
        "last_message_at": incoming.timestamp,
        "language": detect_language(text.removeprefix(VOICE_PREFIX)),
        "message_id": incoming.message_id,
        "message_text": text,
        "is_from_bot": False,
        "is_voice": incoming.is_voice,
        "voice_transcription": text.removeprefix(VOICE_PREFIX) if incoming.is_voice else None,
        "timestamp": incoming.timestamp,
        "message_type": incoming.message_type or ("voice" if incoming.is_voice else "text"),
    }
    contact_id, is_client, message_pk = (await session.execute(_STORE_CLIENT_MESSAGE, values)).one()
    if message_pk is not None:
        return contact_id, message_pk, is_client

    existing = await session.scalar(select(Message).where(Message.message_id == incoming.message_id))
    if existing is None or existing.is_from_bot or existing.answered_at is not None or is_client is False:
        return None
    # Stored before but never answered (a crash between storing and replying): process it again.
    return contact_id, existing.id, is_client


async def store_operator_message(session: AsyncSession, incoming: IncomingMessage) -> Contact | None:
    """Stores what a person typed on the business phone in the client's chat, as the business's message
    (published already: it went out through WhatsApp itself). None for a redelivery."""
    contact_values = {"phone_number": incoming.phone_number, "last_message_at": incoming.timestamp}
    contact_id, _ = (await session.execute(_UPSERT_CONTACT, contact_values)).one()
    message_pk = await session.scalar(
        _INSERT_MESSAGE,
        {
            "contact_id": contact_id,
            "phone_number": incoming.phone_number,
            "message_id": incoming.message_id,
            "message_text": incoming.message_text.removeprefix(VOICE_PREFIX),
            "is_from_bot": True,
            "is_voice": incoming.is_voice,
            "timestamp": incoming.timestamp,
            "message_type": incoming.message_type or ("voice" if incoming.is_voice else "text"),
            "sent_by": OPERATOR,
            "published_at": incoming.timestamp,
        },
    )
    if message_pk is None:
        return None
    return await session.get_one(Contact, contact_id)
