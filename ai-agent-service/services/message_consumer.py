"""The incoming_messages consumer: store the message, then the moderator and the sales agent answer it.

No database connection is held while Gemini answers, so hundreds of conversations are worked on at once:
- within this process, one contact's messages are answered one after another, in arrival order (ContactLocks);
- a turn reads the conversation in a short session, asks Gemini with no session open, then commits in a
  short transaction under the contact's advisory lock (shared with other replicas and the API) that first
  re-reads the message: answered meanwhile → COVERED; the conversation changed (a newer client message, a
  reply or touch stored elsewhere, a reclassification) → the turn is drafted again from the fresh
  conversation, at most MAX_DRAFTS times, then the delivery is retried later (ConversationChanged).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial

from aio_pika.abc import AbstractRobustConnection
from loguru import logger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import autocommit_session, lock_contact
from models import Contact, Decision, Message
from models.decision import NOT_A_CLIENT, UNCLASSIFIED
from service_kit.clock import Clock
from service_kit.consumer import Consumer, Delivery, start_consumer
from service_kit.errors import TransientError
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from service_kit.queues import Queues
from services.ai_moderator import ModeratorVerdict, ask_moderator, store_verdict
from services.ai_sales_agent import (
    NEW_MESSAGE_LIMIT,
    KnowledgeSearch,
    SalesAnswer,
    SalesContext,
    draft_answer,
    sales_context,
    store_holding_reply,
    store_reply,
    unanswered_client_messages,
)
from services.client_stance import turn_stance
from services.conversation_text import recent_messages
from services.follow_up_chain import stop_open_chain
from services.gemini_client import GeminiClient, GeminiUnusableAnswer
from services.incoming_messages import IncomingMessage, store_incoming
from services.outbox import BotMessageOutbox
from utils.metrics import AgentMetrics
from utils.prompt_loader import PromptTemplate
from utils.timezone_helper import WorkingHours

# Drafts of one turn before giving the delivery back to the retry queue; only a conversation that another
# replica keeps changing needs more than one.
MAX_DRAFTS = 3


class ConversationChanged(TransientError):
    """The conversation changed under every draft of a turn; worth another try a little later."""


class Outcome(StrEnum):
    REPLIED = "replied"
    UNCLASSIFIED = "unclassified"  # the moderator needs more messages; nothing is sent
    IGNORED = "ignored"  # not a client: stored, never answered
    COVERED = "covered"  # an earlier reply already answered this message
    DUPLICATE = "duplicate"  # redelivery of a message that needs nothing more


class ContactLocks:
    """One asyncio.Lock per phone number, kept only while a handler holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def of(self, phone_number: str) -> asyncio.Lock:
        lock = self._locks.get(phone_number)
        if lock is None:
            lock = self._locks[phone_number] = asyncio.Lock()
        return lock


@dataclass(frozen=True)
class AgentDeps:
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    outbox: BotMessageOutbox
    llm: GeminiClient
    knowledge: KnowledgeSearch
    moderator_prompt: PromptTemplate
    sales_prompt: PromptTemplate
    max_context_messages: int
    hours: WorkingHours
    clock: Clock
    metrics: AgentMetrics
    # Messages worked on at once (the consumer's prefetch): mostly waiting on Gemini, holding nothing else.
    concurrency: int = 300
    contact_locks: ContactLocks = field(default_factory=ContactLocks)


@dataclass(frozen=True)
class Conversation:
    """What one draft is written from, read before Gemini is asked and checked again before the commit."""

    contact: Contact
    message: Message
    message_count: int  # messages are only ever added, so an unchanged count means an unchanged conversation
    history: list[Message]  # what the moderator sees
    sales: SalesContext


async def consume_incoming(
    connection: AbstractRobustConnection,
    queues: Queues,
    deps: AgentDeps,
    *,
    max_attempts: int,
    retry_delay_s: float | None = None,
) -> Consumer[IncomingMessage]:
    """The incoming_messages consumer: bodies that fit the contract reach handle_incoming typed."""
    return await start_consumer(
        connection,
        queues["incoming_messages"],
        queues.contracts["incoming_messages"],
        model=IncomingMessage,
        handler=partial(handle_incoming, deps=deps),
        publisher=deps.publisher,
        prefetch=deps.concurrency,
        max_attempts=max_attempts,
        retry_delay_s=retry_delay_s,
    )


async def handle_incoming(incoming: IncomingMessage, delivery: Delivery, *, deps: AgentDeps) -> Outcome:
    with deps.metrics.message_processing_seconds.time():
        outcome = await _handle(incoming, deps)
    deps.metrics.messages_received.labels(outcome.value).inc()
    logger.info(
        "Message {} from {} (attempt {}): {}",
        incoming.message_id,
        incoming.phone_number,
        delivery.attempt,
        outcome.value,
    )
    return outcome


async def _handle(incoming: IncomingMessage, deps: AgentDeps) -> Outcome:
    async with deps.sessions.begin() as session:
        stored = await store_incoming(session, incoming)
    if stored is None:
        return Outcome.DUPLICATE
    contact_id, message_pk, is_client = stored
    if is_client is False:
        return Outcome.IGNORED

    # Stored before the turn: the next messages of a burst land while this one is drafted, and the
    # redraft answers them all in one reply (their own turns then find them COVERED).
    async with deps.contact_locks.of(incoming.phone_number):
        for _ in range(MAX_DRAFTS):
            outcome = await _draft_and_commit(contact_id, message_pk, deps)
            if outcome is not None:
                return outcome
            logger.info(
                "Conversation of {} changed while Gemini answered; drafting again", incoming.phone_number
            )
    raise ConversationChanged(f"the conversation of {incoming.phone_number} kept changing")


async def _draft_and_commit(contact_id: int, message_pk: int, deps: AgentDeps) -> Outcome | None:
    """One draft of the turn; None when the conversation changed before it could be committed."""
    now = deps.clock()
    async with autocommit_session(deps.sessions) as session:
        seen = await read_conversation(session, contact_id, message_pk, deps.max_context_messages)
    if seen.message.answered_at is not None:
        return Outcome.COVERED
    if seen.contact.is_client is False:
        return Outcome.IGNORED

    turn = await _draft(seen, deps, now)
    async with deps.sessions.begin() as session:
        # One contact at a time across replicas and the API, until this short transaction ends.
        await lock_contact(session, seen.contact.phone_number)
        contact, message, message_count = await _turn_rows(session, contact_id, message_pk)
        if message.answered_at is not None:
            return Outcome.COVERED
        reclassified = contact.is_client != seen.contact.is_client
        if reclassified or message_count != seen.message_count:
            return None
        if turn.verdict is not None:
            store_verdict(contact, turn.verdict, deps.metrics)
        if turn.answer is not None:
            reply = await store_reply(
                session,
                contact,
                message,
                seen.sales,
                turn.answer,
                prompt=deps.sales_prompt,
                knowledge=deps.knowledge,
                hours=deps.hours,
                now=now,
                metrics=deps.metrics,
            )
        elif turn.holding_reason is not None:
            reply = await store_holding_reply(session, contact, message, seen.sales, turn.holding_reason, now)
        else:
            kind = NOT_A_CLIENT if contact.is_client is False else UNCLASSIFIED
            session.add(
                Decision(
                    contact_id=contact.id, message_id=message.id, kind=kind, reason=turn.why, created_at=now
                )
            )
            return Outcome.IGNORED if kind == NOT_A_CLIENT else Outcome.UNCLASSIFIED
        # Any client message ends an open follow-up chain; the reply's stance tells a clear yes or no.
        await stop_open_chain(session, contact.id, turn_stance([message]), now)
    await relay(deps.sessions, deps.publisher, deps.outbox, ids=[reply.id])
    return Outcome.REPLIED


@dataclass(frozen=True)
class Turn:
    """What Gemini made of a turn: the moderator's verdict (if asked) and the sales answer, or why none."""

    verdict: ModeratorVerdict | None = None
    answer: SalesAnswer | None = None
    holding_reason: str | None = None  # the sales model gave no usable answer: the holding reply goes out
    why: str | None = None  # why nothing is sent (not a client, not classified yet)


async def _draft(seen: Conversation, deps: AgentDeps, now: datetime) -> Turn:
    """Asks the moderator (for an unclassified contact) and the sales agent, holding no database session."""
    verdict = None
    if seen.contact.is_client is None:
        try:
            verdict = await ask_moderator(
                seen.contact,
                seen.history,
                llm=deps.llm,
                prompt=deps.moderator_prompt,
                tz=deps.hours.tz,
                metrics=deps.metrics,
            )
        except GeminiUnusableAnswer as exc:
            return Turn(why=f"moderator gave no usable answer: {exc.reason}")
        if not verdict.isClient:
            return Turn(verdict=verdict, why=verdict.reasoning)
    try:
        answer = await draft_answer(
            seen.sales,
            llm=deps.llm,
            prompt=deps.sales_prompt,
            knowledge=deps.knowledge,
            now=now,
            hours=deps.hours,
            phone_number=seen.contact.phone_number,
        )
    except GeminiUnusableAnswer as exc:
        return Turn(verdict=verdict, holding_reason=f"sales agent gave no usable answer: {exc.reason}")
    return Turn(verdict=verdict, answer=answer)


async def read_conversation(
    session: AsyncSession, contact_id: int, message_pk: int, max_context_messages: int
) -> Conversation:
    # Counted first: whatever the later reads see beyond it shows up as a changed count at the commit.
    contact, message, message_count = await _turn_rows(session, contact_id, message_pk)
    pending = await unanswered_client_messages(session, contact_id)
    # One read serves both: the moderator's history and the sales history without the quoted messages.
    recent = await recent_messages(session, contact_id, max_context_messages + NEW_MESSAGE_LIMIT)
    history = recent[-max_context_messages:] if contact.is_client is None else []
    sales = sales_context(pending, recent, max_context_messages)
    return Conversation(contact, message, message_count, history, sales)


async def _turn_rows(session: AsyncSession, contact_id: int, message_pk: int) -> tuple[Contact, Message, int]:
    """The contact, the message and how many messages the contact has, in one round trip."""
    count = select(func.count()).where(Message.contact_id == contact_id).scalar_subquery()
    row = (
        await session.execute(
            select(Contact, Message, count)
            .join(Message, Message.contact_id == Contact.id)
            .where(Contact.id == contact_id, Message.id == message_pk)
        )
    ).one()
    return row[0], row[1], row[2]
