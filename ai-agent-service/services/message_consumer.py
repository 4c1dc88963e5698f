"""The incoming_messages consumer: store the message, then the moderator and the sales agent answer it.

No database connection is held while Gemini answers, so hundreds of conversations are worked on at once, and
only a few of them at the CPU at a time (WorkSlots, oldest message first):
- within this process, one contact's messages are answered one after another, in arrival order (ContactLocks);
- a turn reads the conversation in a short session, asks Gemini with no session open, then commits in a
  short transaction under the contact's advisory lock (shared with other replicas and the API) that first
  re-reads the message: answered meanwhile → COVERED; the conversation changed (a newer client message, a
  reply or touch stored elsewhere, a reclassification) → the turn is drafted again from the fresh
  conversation, at most MAX_DRAFTS times, then the delivery is retried later (ConversationChanged).

A handler holds a work slot to store the message, then again for its turn (read, draft, commit, publish);
it waits for the contact's lock outside any slot, and the Gemini client gives the slot back while Gemini
answers. Inside a slot the commit may wait for the contact's advisory lock: its holder is then another
replica, the API, or a handler that holds a slot already, never one waiting for a slot.
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
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import lock_contact
from models import Contact, Decision, Message
from models.decision import LLM_BUDGET, NOT_A_CLIENT, PAUSED, UNCLASSIFIED
from service_kit.clock import Clock
from service_kit.consumer import Consumer, Delivery, start_consumer
from service_kit.errors import TransientError, is_transient
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from service_kit.queues import Queues
from service_kit.runtime import autocommit_session
from services.ai_moderator import ModeratorVerdict, ask_moderator, classify_contact, store_verdict
from services.ai_sales_agent import (
    NEW_MESSAGE_LIMIT,
    KnowledgeSearch,
    SalesAnswer,
    SalesContext,
    draft_answer,
    sales_context,
    unanswered_and_recent,
)
from services.call_calendar import CallPolicy
from services.call_summary import complete_call_notification
from services.chat_actions import person_answered
from services.chat_control import (
    BUDGETED,
    LOOP_SUSPECTED,
    SEND_BUDGET,
    ChatLimits,
    is_paused,
    loop_suspected,
    next_day_start,
    pause,
)
from services.client_stance import turn_stance
from services.code_replies import store_ask_to_write, store_budget_notice
from services.decision_log import record_dead_letter
from services.follow_up_chain import stop_open_chain
from services.gemini_client import GeminiClient, GeminiUnusableAnswer
from services.incoming_messages import IncomingMessage, store_incoming, store_operator_message
from services.language import language_of
from services.llm_budget import spend_llm_calls
from services.notifications import NotificationOutbox, manager_for, notify, paused_text
from services.opt_out import stop_request_language
from services.outbox import BotMessageOutbox
from services.replies import ReplyRules, StoredReply, store_holding_reply, store_opt_out, store_reply
from services.work_slots import DEFAULT_CPU_SLOTS, WorkSlots
from utils.heap import HeapTrim
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
    OPERATOR = "operator"  # a person wrote from the business phone: stored, the bot steps back
    PAUSED = "paused"  # the bot is paused in this chat: stored, the person answers
    OPTED_OUT = "opted_out"  # the client asked to stop: the code's confirmation, never chased again
    SILENCED = "silenced"  # the day's send budget is spent, or the chat looks like a bot loop
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
    limits: ChatLimits
    calls: CallPolicy
    notification_outbox: NotificationOutbox
    # Messages worked on at once (the consumer's prefetch): mostly waiting on Gemini, holding nothing else.
    concurrency: int = 300
    # Of those, how many use the CPU at once: store, read, draft (all but the wait for Gemini), commit.
    slots: WorkSlots = field(default_factory=lambda: WorkSlots(DEFAULT_CPU_SLOTS))
    contact_locks: ContactLocks = field(default_factory=ContactLocks)
    heap: HeapTrim = field(default_factory=HeapTrim)  # a burst's freed memory goes back when it is over

    @property
    def reply_rules(self) -> ReplyRules:
        return ReplyRules(self.sales_prompt, self.knowledge, self.hours, self.calls, self.metrics)

    async def reclassify(self, contact_id: int) -> tuple[Contact, ModeratorVerdict]:
        """The moderator asked again about a contact, at an operator's request (the API and the console)."""
        return await classify_contact(
            self.sessions,
            contact_id,
            llm=self.llm,
            prompt=self.moderator_prompt,
            max_context_messages=self.max_context_messages,
            tz=self.hours.tz,
            metrics=self.metrics,
        )


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
    ticket = deps.slots.ticket()
    try:
        with deps.heap.working(), deps.metrics.message_processing_seconds.time():
            outcome = await _handle(incoming, deps, ticket)
    except Exception as exc:
        if delivery.is_last_attempt or not is_transient(exc):
            # The consumer parks it in the DLQ now: the conversation's decision log says so, and why.
            tries = f" (after {delivery.attempt} attempts)" if is_transient(exc) else ""
            reason = f"{type(exc).__name__}: {exc}{tries}"
            await record_dead_letter(deps.sessions, incoming.message_id, reason, deps.clock())
        raise
    deps.metrics.messages_received.labels(outcome.value).inc()
    logger.info(
        "Message {} from {} (attempt {}): {}",
        incoming.message_id,
        incoming.phone_number,
        delivery.attempt,
        outcome.value,
    )
    return outcome


async def _handle(incoming: IncomingMessage, deps: AgentDeps, ticket: int) -> Outcome:
    if incoming.sender == "operator":
        async with deps.slots.slot(ticket):
            return await _take_over(incoming, deps)
    async with deps.slots.slot(ticket), autocommit_session(deps.sessions) as session:
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
            outcome = await _draft_and_commit(contact_id, message_pk, deps, ticket, incoming.voice_too_long)
            if outcome is not None:
                return outcome
            logger.info(
                "Conversation of {} changed while Gemini answered; drafting again", incoming.phone_number
            )
    raise ConversationChanged(f"the conversation of {incoming.phone_number} kept changing")


async def _take_over(incoming: IncomingMessage, deps: AgentDeps) -> Outcome:
    """A person wrote in the chat from the business phone: their words join the conversation, what the
    client wrote before counts as answered, and the bot steps back for OPERATOR_PAUSE_HOURS."""
    now = deps.clock()
    async with deps.sessions.begin() as session:
        await lock_contact(session, incoming.phone_number)
        contact = await store_operator_message(session, incoming)
        if contact is None:
            return Outcome.DUPLICATE
        await person_answered(session, contact, now, deps.limits.operator_pause)
    return Outcome.OPERATOR


async def _draft_and_commit(
    contact_id: int, message_pk: int, deps: AgentDeps, ticket: int, voice_too_long: bool = False
) -> Outcome | None:
    """One draft of the turn; None when the conversation changed before it could be committed."""
    now = deps.clock()
    async with deps.slots.slot(ticket):
        async with autocommit_session(deps.sessions) as session:
            seen = await read_conversation(
                session, contact_id, message_pk, deps.max_context_messages, deps.hours, now
            )
        if seen.message.answered_at is not None:
            return Outcome.COVERED
        if seen.contact.is_client is False:
            return Outcome.IGNORED
        if is_paused(seen.contact, now):
            turn = Turn(silent=PAUSED, why=f"the bot is paused in this chat ({seen.contact.pause_reason})")
        elif (language := _stop_request(seen)) is not None:
            turn = Turn(opt_out=language)  # the code's own confirmation: no Gemini call for it
        elif voice_too_long:
            turn = Turn(ask_to_write=True)  # nothing to hear: the code asks for text, no Gemini call
        else:
            turn = await _draft_within_budget(seen, deps, now)  # the slot serves others while Gemini answers

        stored, contact, outcome = await _commit(contact_id, message_pk, seen, turn, deps, now)
        if stored is not None and stored.message is not None:
            await relay(deps.sessions, deps.publisher, deps.outbox, ids=[stored.message.id])
    if stored is not None:
        await _notify_managers(stored, contact, deps, ticket)
    return outcome


async def _commit(
    contact_id: int, message_pk: int, seen: Conversation, turn: Turn, deps: AgentDeps, now: datetime
) -> tuple[StoredReply | None, Contact, Outcome | None]:
    """The turn stored in the contact's locked transaction: what to publish, the contact as committed, and
    the outcome (None when the conversation changed since it was read)."""
    async with deps.sessions.begin() as session:
        # One contact at a time across replicas and the API, until this short transaction ends.
        await lock_contact(session, seen.contact.phone_number)
        contact, message, message_count, sent_today = await _turn_rows(
            session, contact_id, message_pk, deps.hours.day_start(now)
        )
        if message.answered_at is not None:
            return None, contact, Outcome.COVERED
        reclassified = contact.is_client != seen.contact.is_client
        if reclassified or message_count != seen.message_count:
            return None, contact, None
        if turn.verdict is not None:
            store_verdict(contact, turn.verdict, deps.metrics)
        stored, outcome = await _commit_turn(session, seen, turn, contact, message, sent_today, deps, now)
        # Any client message ends an open follow-up chain; the reply's stance tells a clear yes or no.
        await stop_open_chain(session, contact.id, turn_stance([message]), now)
    return stored, contact, outcome


async def _notify_managers(stored: StoredReply, contact: Contact, deps: AgentDeps, ticket: int) -> None:
    """After the reply, the managers' notifications (a booked call's once Gemini summed it up)."""
    notifications = list(stored.notifications)
    if stored.summary is not None:
        notification, call = stored.summary
        await complete_call_notification(deps.sessions, deps.llm, notification, call, contact, deps.hours)
        notifications.append(notification)
    if notifications:
        async with deps.slots.slot(ticket):
            await relay(deps.sessions, deps.publisher, deps.notification_outbox, ids=notifications)


async def _commit_turn(
    session: AsyncSession,
    seen: Conversation,
    turn: Turn,
    contact: Contact,
    message: Message,
    sent_today: int,
    deps: AgentDeps,
    now: datetime,
) -> tuple[StoredReply | None, Outcome]:
    """Stores what the turn decided, in the contact's locked transaction: what to publish, if anything."""
    if is_paused(contact, now) or turn.silent == PAUSED:  # a person may have taken over while Gemini wrote
        why = turn.why or f"the bot is paused in this chat ({contact.pause_reason})"
        await _keep_silent(session, seen, message, PAUSED, why, now)
        return None, Outcome.PAUSED
    model_read_a_stop = (turn.answer is not None and turn.answer.opt_out) or (
        turn.verdict is not None and turn.verdict.opt_out
    )
    if turn.opt_out or model_read_a_stop:
        language = turn.opt_out or language_of(contact)
        reply = await store_opt_out(session, contact, message, seen.sales.pending, language, now)
        return reply, Outcome.OPTED_OUT
    if turn.silent == LLM_BUDGET:
        return await _over_budget(session, seen, turn, message, deps, now), Outcome.SILENCED
    if turn.answer is None and turn.holding_reason is None and not turn.ask_to_write:
        kind = NOT_A_CLIENT if contact.is_client is False else UNCLASSIFIED
        session.add(
            Decision(contact_id=contact.id, message_id=message.id, kind=kind, reason=turn.why, created_at=now)
        )
        return None, Outcome.IGNORED if kind == NOT_A_CLIENT else Outcome.UNCLASSIFIED
    if sent_today >= deps.limits.messages_per_day:
        pause(contact, SEND_BUDGET, next_day_start(deps.hours, now), now)
        why = f"{sent_today} bot messages today, the limit is {deps.limits.messages_per_day}"
        return await _step_back(session, seen, message, SEND_BUDGET, why, deps, now), Outcome.SILENCED
    loop = loop_suspected([*seen.sales.history, *seen.sales.quoted], deps.limits.loop_reply_seconds)
    if loop is not None:
        pause(contact, LOOP_SUSPECTED, None, now)
        return await _step_back(session, seen, message, LOOP_SUSPECTED, loop, deps, now), Outcome.SILENCED
    if turn.ask_to_write:
        reply = await store_ask_to_write(session, contact, message, seen.sales.pending, now)
    elif turn.answer is not None:
        reply = await store_reply(session, contact, message, seen.sales, turn.answer, deps.reply_rules, now)
    else:
        reply = await store_holding_reply(
            session, contact, message, seen.sales.pending, turn.holding_reason or "", now
        )
    return reply, Outcome.REPLIED


async def _over_budget(
    session: AsyncSession, seen: Conversation, turn: Turn, message: Message, deps: AgentDeps, now: datetime
) -> StoredReply:
    """Over the hour's Gemini budget: told once (and a manager with them), silent after that."""
    why = turn.why or ""
    if turn.budget_notice:
        managers = deps.calls.managers
        pending = seen.sales.pending
        return await store_budget_notice(
            session, seen.contact, message, pending, why, deps.hours, managers, now
        )
    await _keep_silent(session, seen, message, LLM_BUDGET, why, now)
    return StoredReply(None)


async def _step_back(
    session: AsyncSession,
    seen: Conversation,
    message: Message,
    reason: str,
    why: str,
    deps: AgentDeps,
    now: datetime,
) -> StoredReply:
    """The bot stops in this chat: nothing is sent, and a manager hears about it."""
    await _keep_silent(session, seen, message, reason, why, now)
    stored = StoredReply(None)
    manager = manager_for(seen.contact, deps.calls.managers)
    if manager is not None:
        text = paused_text(seen.contact, reason)
        notification = await notify(
            session, manager, "bot_paused", text, f"paused-{message.message_id}", contact_id=seen.contact.id
        )
        stored.notifications += [notification] if notification else []
    return stored


async def _keep_silent(
    session: AsyncSession, seen: Conversation, message: Message, kind: str, why: str, now: datetime
) -> None:
    """The turn ends without a reply: its messages count as handled (they are not answered later) and the
    decision says why."""
    await session.execute(
        update(Message).where(Message.id.in_([m.id for m in seen.sales.pending])).values(answered_at=now)
    )
    session.add(
        Decision(contact_id=seen.contact.id, message_id=message.id, kind=kind, reason=why, created_at=now)
    )
    logger.info("No reply to {}: {}", seen.contact.phone_number, why)


def _stop_request(seen: Conversation) -> str | None:
    for pending in seen.sales.quoted:
        language = stop_request_language(pending.voice_transcription or pending.message_text or "")
        if language is not None:
            return language
    return None


@dataclass(frozen=True)
class Turn:
    """What the turn is to be: the moderator's verdict (if asked) and the sales answer, or why nothing."""

    verdict: ModeratorVerdict | None = None
    answer: SalesAnswer | None = None
    holding_reason: str | None = None  # the sales model gave no usable answer: the holding reply goes out
    opt_out: str | None = None  # the client asked to stop (the language of the request)
    silent: str | None = None  # a decision kind: why the bot keeps quiet
    why: str | None = None  # why nothing is sent (not a client, not classified yet, paused)
    ask_to_write: bool = False  # a voice note too long to transcribe: the code asks for text
    budget_notice: bool = False  # the first turn over the hour's Gemini budget: the client is told once


async def _draft_within_budget(seen: Conversation, deps: AgentDeps, now: datetime) -> Turn:
    """The draft, when the contact's hour of Gemini calls has room for it (the moderator's call counts)."""
    calls = 2 if seen.contact.is_client is None else 1
    limit = deps.limits.llm_calls_per_hour
    budget = await spend_llm_calls(deps.sessions, seen.contact.id, calls, limit, now)
    if budget.allowed:
        return await _draft(seen, deps, now)
    why = f"{limit} Gemini calls an hour per contact are spent"
    # Someone not yet known as a client is not promised a manager: they are only no longer answered.
    notice = budget.first_refusal and seen.contact.is_client is True
    return Turn(silent=LLM_BUDGET, why=why, budget_notice=notice)


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
            language=language_of(seen.contact),
        )
    except GeminiUnusableAnswer as exc:
        return Turn(verdict=verdict, holding_reason=f"sales agent gave no usable answer: {exc.reason}")
    return Turn(verdict=verdict, answer=answer)


async def read_conversation(
    session: AsyncSession,
    contact_id: int,
    message_pk: int,
    max_context_messages: int,
    hours: WorkingHours,
    now: datetime,
) -> Conversation:
    # Counted first: whatever the later reads see beyond it shows up as a changed count at the commit.
    contact, message, message_count, _ = await _turn_rows(
        session, contact_id, message_pk, hours.day_start(now)
    )
    # The recent messages serve both: the moderator's history and the sales history without the quoted ones.
    pending, recent = await unanswered_and_recent(
        session, contact_id, max_context_messages + NEW_MESSAGE_LIMIT
    )
    history = recent[-max_context_messages:] if contact.is_client is None else []
    sales = sales_context(pending, recent, max_context_messages)
    return Conversation(contact, message, message_count, history, sales)


async def _turn_rows(
    session: AsyncSession, contact_id: int, message_pk: int, day_start: datetime
) -> tuple[Contact, Message, int, int]:
    """The contact, the message, how many messages the contact has, and how many the bot sent it since
    `day_start` (its daily budget), in one round trip."""
    count = select(func.count()).where(Message.contact_id == contact_id).scalar_subquery()
    sent_today = (
        select(func.count())
        .where(
            Message.contact_id == contact_id,
            Message.is_from_bot.is_(True),
            Message.sent_by.in_(BUDGETED),
            Message.timestamp >= day_start,
        )
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(Contact, Message, count, sent_today)
            .join(Message, Message.contact_id == Contact.id)
            .where(Contact.id == contact_id, Message.id == message_pk)
        )
    ).one()
    return row[0], row[1], row[2], row[3]
