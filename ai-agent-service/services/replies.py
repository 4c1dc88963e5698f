"""Storing a reply to a client's turn: the model's text once the code has checked it, or the code's own (a
booking confirmation or offer, a safe text, a manager's promise, the holding reply, the opt-out
confirmation), as an unpublished bot message that covers every client message of the turn, with the
decision that says why and the notifications the managers get. Runs in the contact's locked transaction;
the caller publishes after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loguru import logger
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Decision, Message, ScheduledCall
from models.decision import GUARDED, HANDED_OVER, HOLDING, OPTED_OUT, REPLIED
from service_kit.managers import Manager
from services.ai_sales_agent import KnowledgeSearch, SalesAnswer, SalesContext
from services.call_booking import CallDecision, decide_call
from services.call_calendar import CallPolicy
from services.crm_events import (
    CALL_BOOKED,
    CALL_CANCELLED,
    CONTACT_OPTED_OUT,
    call_data,
    opted_out_data,
    record_crm_event,
)
from services.follow_up_chain import stop_open_chain
from services.language import KK, RU, in_language, language_of
from services.notifications import (
    answer_promise,
    call_booked_text,
    call_changed_text,
    last_client_words,
    manager_for,
    notify,
    question_text,
)
from services.opt_out import CONFIRMATION
from services.outbox import bot_message
from services.reply_guard import check_reply
from utils.metrics import AgentMetrics
from utils.prompt_loader import PromptTemplate
from utils.timezone_helper import WorkingHours

HOLDING_REPLY = {
    RU: "Спасибо! Уточню детали и вернусь к вам в ближайшее время 😊",
    KK: "Рахмет! Мәліметтерді нақтылап, жақын арада сізге қайта жазамын 😊",
}
MANAGER_ANSWERS = {
    RU: "Хороший вопрос! Уточню у менеджера — он напишет вам {promise} 😊",
    KK: "Жақсы сұрақ! Менеджерден нақтылаймын — ол сізге {promise} жазады 😊",
}
MANAGER_CONFIRMS_PRICE = {
    RU: "Точную стоимость для вашего случая подтвердит наш менеджер — он напишет вам {promise} 😊",
    KK: "Сіздің жағдайыңызға нақты бағаны менеджеріміз растайды — ол сізге {promise} жазады 😊",
}


@dataclass
class StoredReply:
    message: Message | None  # None when the bot keeps quiet (only notifications go out)
    notifications: list[int] = field(default_factory=list)  # published after the commit
    # The booked call's notification, still waiting for Gemini's summary of the conversation.
    summary: tuple[int, ScheduledCall] | None = None


@dataclass(frozen=True)
class ReplyRules:
    """What a model's reply is checked against and who hears about it."""

    prompt: PromptTemplate
    knowledge: KnowledgeSearch
    hours: WorkingHours
    policy: CallPolicy
    metrics: AgentMetrics


async def store_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    context: SalesContext,
    answer: SalesAnswer,
    rules: ReplyRules,
    now: datetime,
) -> StoredReply:
    """Books, moves or cancels the call the answer speaks of, stores the checked reply, records the decision
    and writes the managers' notifications."""
    call = await decide_call(
        session,
        contact,
        answer=answer,
        now=now,
        hours=rules.hours,
        policy=rules.policy,
        source_message_id=trigger.message_id or "",
    )
    language = language_of(contact)
    text, problem = _checked_text(answer, call, context, rules, now, language)
    kind = REPLIED if problem is None else GUARDED
    manager = manager_for(contact, rules.policy.managers)
    asks_a_manager = answer.knowledge_gap or (problem or "").startswith("amount ")
    if manager is not None and call.reply is None and asks_a_manager:
        # A person answers what the knowledge base does not: the client is told when.
        template = MANAGER_ANSWERS if problem is None else MANAGER_CONFIRMS_PRICE
        text = in_language(template, language).format(promise=answer_promise(rules.hours, now, language))
        problem, kind = problem or "the knowledge base has no answer: a manager will", HANDED_OVER
    if problem is not None:
        rules.metrics.replies_replaced.inc()
        logger.warning("Reply to {} replaced by the code's text: {}", contact.phone_number, problem)
    reply = add_reply(session, contact, trigger, text, now)
    await cover_pending(session, context.pending, now)
    trigger.stance = answer.stance
    await session.flush()
    model_text = answer.reply if problem is not None else None
    record_decision(session, contact, trigger, reply, kind, problem or call.note, now, model_text)
    stored = StoredReply(reply)
    await _tell_managers(session, stored, contact, call, context, rules, now, kind == HANDED_OVER)
    rules.metrics.replies.inc()
    logger.debug(  # the handler's INFO line per message says it was replied to
        "Reply to {} covers {} message(s), stance {}",
        contact.phone_number,
        len(context.pending),
        answer.stance,
    )
    return stored


async def store_holding_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    reason: str,
    now: datetime,
) -> StoredReply:
    """The code's holding reply when Gemini gave no usable answer; recorded with why."""
    text = in_language(HOLDING_REPLY, language_of(contact))
    reply = await store_code_reply(session, contact, trigger, pending, text, now)
    record_decision(session, contact, trigger, reply, HOLDING, reason, now)
    logger.warning("Holding reply to {}: {}", contact.phone_number, reason)
    return StoredReply(reply)


async def store_opt_out(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    language: str,
    now: datetime,
) -> StoredReply:
    """The client asked to stop: one confirmation written by code, the open chain ends, and no chain is
    ever armed again for this contact (until an operator re-enables follow-ups). The CRMs hear of it once."""
    if contact.opted_out_at is None:
        record_crm_event(session, CONTACT_OPTED_OUT, contact, opted_out_data(now, language), occurred_at=now)
    contact.opted_out_at = now
    await stop_open_chain(session, contact.id, None, now, reason=OPTED_OUT)
    text = in_language(CONFIRMATION, language)
    reply = await store_code_reply(session, contact, trigger, pending, text, now)
    record_decision(session, contact, trigger, reply, OPTED_OUT, "the client asked to stop", now)
    logger.info("Contact {} opted out", contact.phone_number)
    return StoredReply(reply)


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


def _checked_text(
    answer: SalesAnswer,
    call: CallDecision,
    context: SalesContext,
    rules: ReplyRules,
    now: datetime,
    language: str,
) -> tuple[str, str | None]:
    """The text to send and, when it is not the model's own, why the model's text was not sent."""
    if call.reply is not None:
        # The code booked, offered or asked: its text answers, whatever the model wrote.
        return call.reply, call.guard
    client_texts = [
        m.voice_transcription or m.message_text or "" for m in (*context.history, *context.pending)
    ]
    verdict = check_reply(answer.reply, rules.knowledge.full_text(), [rules.prompt.text], client_texts)
    if not verdict.ok:
        return verdict.text_or_fallback(answer.reply, language), verdict.reason
    problem = call.check_model_text(answer.reply, rules.hours, now)
    if problem is not None:
        return call.safe_reply, problem
    return answer.reply, None


async def _tell_managers(
    session: AsyncSession,
    stored: StoredReply,
    contact: Contact,
    call: CallDecision,
    context: SalesContext,
    rules: ReplyRules,
    now: datetime,
    handed_over: bool,
) -> None:
    """The managers' notifications and the CRMs' events of this turn: a booked call (its summary follows
    after the commit), the calls it moved or cancelled, and a question a manager now answers."""
    managers, hours = rules.policy.managers, rules.hours
    changed = [(c, "перенесён клиентом") for c in call.replaced] + [
        (c, "отменён: клиент не сможет") for c in call.cancelled
    ]
    for old, what in changed:
        record_crm_event(session, CALL_CANCELLED, contact, call_data(old, reason=what))
    if call.booked is not None:
        rules.metrics.calls_booked.inc()
        record_crm_event(session, CALL_BOOKED, contact, call_data(call.booked))
    if not managers:
        return
    if call.booked is not None:
        words = "Последние сообщения клиента:\n" + last_client_words([*context.history, *context.pending])
        text = call_booked_text(contact, call.booked, hours, words)
        notification = await notify(
            session,
            manager_for(contact, managers, call.booked),
            "call_booked",
            text,
            f"call-booked-{call.booked.id}",
            contact_id=contact.id,
            call_id=call.booked.id,
            summary_pending=True,
        )
        stored.summary = (notification, call.booked) if notification else None
    for old, what in changed:
        text = call_changed_text(contact, old, hours, what)
        manager = manager_for(contact, managers, old)
        await _notify_now(
            session, stored, manager, "call_changed", text, f"call-changed-{old.id}", contact, old
        )
    if handed_over:
        question = "\n".join(m.voice_transcription or m.message_text or "" for m in context.quoted)
        text = question_text(contact, question, answer_promise(hours, now))
        outgoing_id = f"question-{stored.message.outgoing_id}"
        await _notify_now(
            session, stored, manager_for(contact, managers), "question", text, outgoing_id, contact
        )


async def _notify_now(
    session: AsyncSession,
    stored: StoredReply,
    manager: Manager | None,
    kind: str,
    text: str,
    outgoing_id: str,
    contact: Contact,
    call: ScheduledCall | None = None,
) -> None:
    if manager is None:
        return
    notification = await notify(
        session, manager, kind, text, outgoing_id, contact_id=contact.id, call_id=call.id if call else None
    )
    if notification is not None:
        stored.notifications.append(notification)


def record_decision(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    reply: Message,
    kind: str,
    reason: str | None,
    now: datetime,
    model_text: str | None = None,
) -> None:
    session.add(
        Decision(
            contact_id=contact.id,
            message_id=trigger.id,
            reply_id=reply.id,
            kind=kind,
            reason=reason,
            model_text=model_text,
            created_at=now,
        )
    )


async def store_code_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    text: str,
    now: datetime,
) -> Message:
    reply = add_reply(session, contact, trigger, text, now)
    await cover_pending(session, pending, now)
    await session.flush()
    return reply
