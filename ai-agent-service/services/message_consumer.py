"""The incoming_messages consumer: store the message, then moderator or sales agent under the contact lock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

import sqlalchemy.exc
from loguru import logger
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import lock_contact
from config.queue import Broker, ConsumerHandle
from models import Contact, Message
from services.ai_moderator import classify_contact
from services.ai_sales_agent import KnowledgeSearch, answer_client
from services.call_booking import WorkingHours
from services.client_stance import turn_stance
from services.follow_up_scheduler import stop_open_chain
from services.gemini_client import GeminiBadOutput, GeminiClient, GeminiUnavailable
from services.outbox import publish_stored
from utils.helpers import Clock
from utils.metrics import MESSAGE_PROCESSING_SECONDS, MESSAGES_RECEIVED
from utils.prompt_loader import PromptTemplate

# Handlers wait on Gemini for seconds: the prefetch is how many messages are worked on at once.
PREFETCH = 32
VOICE_PREFIX = "[ТРАНСКРИБАЦИЯ] "
# Worth another try a little later (through the retry queue); anything else is dead-lettered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    GeminiUnavailable,
    GeminiBadOutput,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    OSError,
    asyncio.TimeoutError,
)


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


class Outcome(StrEnum):
    REPLIED = "replied"
    UNCLASSIFIED = "unclassified"  # the moderator needs more messages; nothing is sent
    IGNORED = "ignored"  # not a client: stored, never answered
    COVERED = "covered"  # an earlier reply already answered this message
    DUPLICATE = "duplicate"  # redelivery of a message that needs nothing more


@dataclass(frozen=True)
class AgentDeps:
    session_factory: async_sessionmaker[AsyncSession]
    broker: Broker
    llm: GeminiClient
    knowledge: KnowledgeSearch
    moderator_prompt: PromptTemplate
    sales_prompt: PromptTemplate
    max_context_messages: int
    hours: WorkingHours
    clock: Clock


async def start_consumer(deps: AgentDeps) -> ConsumerHandle:
    return await deps.broker.consume(
        "incoming_messages",
        partial(handle_incoming, deps=deps),
        transient=TRANSIENT_ERRORS,
        prefetch=PREFETCH,
    )


async def handle_incoming(body: dict[str, Any], deps: AgentDeps) -> Outcome:
    incoming = IncomingMessage.model_validate(body)
    with MESSAGE_PROCESSING_SECONDS.time():
        outcome = await _handle(incoming, deps)
    MESSAGES_RECEIVED.labels(outcome.value).inc()
    logger.info("Message {} from {}: {}", incoming.message_id, incoming.phone_number, outcome.value)
    return outcome


async def _handle(incoming: IncomingMessage, deps: AgentDeps) -> Outcome:
    async with deps.session_factory.begin() as session:
        stored = await store_incoming(session, incoming)
    if stored is None:
        return Outcome.DUPLICATE
    contact_id, message_pk, is_client = stored
    if is_client is False:
        return Outcome.IGNORED

    async with deps.session_factory.begin() as session:
        # One contact at a time across all consumers, until this transaction ends.
        await lock_contact(session, incoming.phone_number)
        contact = await session.get_one(Contact, contact_id, populate_existing=True)
        message = await session.get_one(Message, message_pk, populate_existing=True)
        if message.answered_at is not None:
            return Outcome.COVERED
        if contact.is_client is None:
            await classify_contact(
                session,
                contact,
                llm=deps.llm,
                prompt=deps.moderator_prompt,
                max_context_messages=deps.max_context_messages,
            )
        if contact.is_client is None:
            return Outcome.UNCLASSIFIED
        if contact.is_client is False:
            return Outcome.IGNORED
        reply = await answer_client(
            session,
            contact,
            message,
            llm=deps.llm,
            prompt=deps.sales_prompt,
            knowledge=deps.knowledge,
            max_context_messages=deps.max_context_messages,
            hours=deps.hours,
            now=deps.clock(),
        )
        # Any client message ends an open follow-up chain; the reply's stance tells a clear yes or no.
        await stop_open_chain(session, contact.id, turn_stance([message]), deps.clock())
    await publish_stored(deps.session_factory, deps.broker, reply)
    return Outcome.REPLIED


async def store_incoming(
    session: AsyncSession, incoming: IncomingMessage
) -> tuple[int, int, bool | None] | None:
    """Upserts the contact and stores the message.

    Returns (contact id, message row id, is_client), or None for a redelivery that needs nothing more.
    """
    info = incoming.contact_info or ContactInfo()
    contact_values = {
        "phone_number": incoming.phone_number,
        "name": info.FirstName or info.PushName or incoming.sender_name,
        "full_name": info.FullName,
        "business_name": info.BusinessName,
        "last_message_at": incoming.timestamp,
    }
    upsert = insert(Contact).values(**contact_values)
    fresh = upsert.excluded
    contact_id, is_client = (
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[Contact.phone_number],
                set_={
                    "name": func.coalesce(fresh.name, Contact.name),
                    "full_name": func.coalesce(fresh.full_name, Contact.full_name),
                    "business_name": func.coalesce(fresh.business_name, Contact.business_name),
                    "last_message_at": func.greatest(Contact.last_message_at, fresh.last_message_at),
                    "updated_at": func.now(),
                },
            ).returning(Contact.id, Contact.is_client)
        )
    ).one()

    text = incoming.message_text
    message_pk = await session.scalar(
        insert(Message)
        .values(
            contact_id=contact_id,
            phone_number=incoming.phone_number,
            message_id=incoming.message_id,
            message_text=text,
            is_from_bot=False,
            is_voice=incoming.is_voice,
            voice_transcription=text.removeprefix(VOICE_PREFIX) if incoming.is_voice else None,
            timestamp=incoming.timestamp,
            message_type=incoming.message_type or ("voice" if incoming.is_voice else "text"),
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(Message.id)
    )
    if message_pk is not None:
        return contact_id, message_pk, is_client

    existing = await session.scalar(select(Message).where(Message.message_id == incoming.message_id))
    if existing is None or existing.is_from_bot or existing.answered_at is not None or is_client is False:
        return None
    # Stored before but never answered (a crash between storing and replying): process it again.
    return contact_id, existing.id, is_client
