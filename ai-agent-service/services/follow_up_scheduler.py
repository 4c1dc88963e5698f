"""The follow-up chain: up to five touches to a client who went silent or answered vaguely.

Intervals count from the moment the client went silent (the bot's last message the client left unanswered;
touches themselves never count), and a touch due outside working hours waits for the next working-hours
start in Astana. Touches are written by Gemini, stored as bot messages and published through the outbox.
A touch found more than LATE_GRACE past its due time outside working hours (the service was down) waits for
the next working-hours start, and after an outage overdue touches are spread a day apart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.queue import Broker
from models import Contact, FollowUp, Message
from service_kit.clock import Clock
from services.ai_sales_agent import KnowledgeSearch
from services.client_stance import turn_stance
from services.conversation_text import format_history, recent_messages, shown_text
from services.follow_up_arming import SENT_BY, arm_follow_ups, chain_length, touch_due_at
from services.gemini_client import GeminiClient, GeminiError, GeminiUnusableAnswer
from services.outbox import publish_stored
from services.reply_guard import check_reply
from utils.prompt_loader import PromptTemplate
from utils.timezone_helper import WorkingHours

FOLLOW_UP_PLACEHOLDERS = {
    "touch_number",
    "conversation_history",
    "last_bot_message",
    "last_client_message",
    "follow_up_reason",
    "hours_since_last_message",
    "current_datetime",
}
# Due times are always inside working hours, so a touch this late at night was missed, not scheduled.
LATE_GRACE = timedelta(minutes=15)
# After an outage several touches can be overdue at once; they still go out at least this far apart.
MIN_TOUCH_GAP = timedelta(hours=24)
TOUCHES_PER_PASS = 100
REASONS = {
    "no_response": "Клиент не ответил на наше последнее сообщение.",
    "vague_answer": "Клиент ответил неопределённо (например, «подумаю», «посмотрю») и больше не писал.",
}
# Written by code for when Gemini gives no usable touch: the chain goes on, politely.
SAFE_TOUCHES = {
    1: "Добрый день! 😊 Напоминаю о нашем разговоре. Если остались вопросы — я на связи.",
    5: "Здравствуйте! Понимаю, что сейчас, возможно, не самое подходящее время. "
    "Если в будущем понадобится помощь — всегда рады помочь! 😊",
}
_STOP_REASONS = {"yes": "client_said_yes", "no": "client_said_no"}


class FollowUpText(BaseModel):
    message: str = Field(min_length=1, description="The follow-up message to send to the client")


@dataclass(frozen=True)
class FollowUpDeps:
    session_factory: async_sessionmaker[AsyncSession]
    broker: Broker
    llm: GeminiClient
    prompt: PromptTemplate
    intervals: tuple[int, ...]
    hours: WorkingHours
    max_context_messages: int
    knowledge: KnowledgeSearch  # what the reply guard holds a touch's prices and discounts against


@dataclass(frozen=True)
class SentTouch:
    follow_up: FollowUp
    touch_number: int
    message: Message
    published: bool


class FollowUpNotFound(LookupError):
    pass


class FollowUpClosed(Exception):
    """The chain is completed (or was just stopped because the client wrote): there is no touch to send."""

    def __init__(self, follow_up: FollowUp):
        super().__init__(f"Follow-up {follow_up.id} is already closed: {follow_up.stop_reason}")
        self.follow_up = follow_up


class FollowUpBusy(Exception):
    """Another worker is sending this chain's touch right now."""


async def stop_open_chain(session: AsyncSession, contact_id: int, stance: str | None, now: datetime) -> None:
    """A client message ends the contact's open chain; a clear yes or no is recorded as such."""
    reason = _STOP_REASONS.get(stance or "", "client_responded")
    stopped = await session.scalars(
        update(FollowUp)
        .where(FollowUp.contact_id == contact_id, FollowUp.is_completed.is_(False))
        .values(is_completed=True, stop_reason=reason, stopped_at=now, next_touch_at=None)
        .returning(FollowUp.id)
    )
    for follow_up_id in stopped:
        logger.info("Follow-up {} stopped: {}", follow_up_id, reason)


async def send_due_touches(deps: FollowUpDeps, *, clock: Clock) -> list[SentTouch]:
    """Sends every touch that is due; rows are claimed with SKIP LOCKED, so replicas never send one twice."""
    now = clock()
    working_start = deps.hours.next_working_start(now)
    passed_over: set[int] = set()
    sent = []
    for _ in range(TOUCHES_PER_PASS):
        async with deps.session_factory.begin() as session:
            chain = await session.scalar(_claim_due(now, passed_over))
            if chain is None:
                break
            if working_start != now and now - chain.next_touch_at > LATE_GRACE:
                logger.info(
                    "Follow-up {} missed its working hours; next touch at {}", chain.id, working_start
                )
                chain.next_touch_at = working_start
                continue
            touch = chain.touch_number
            try:
                message = await _send_touch(deps, session, chain, now)
            except GeminiError as exc:
                logger.warning("Follow-up {} touch {} left due: {}", chain.id, chain.touch_number, exc)
                passed_over.add(chain.id)
                continue
        if message is not None:
            published = await publish_stored(deps.session_factory, deps.broker, message)
            sent.append(SentTouch(chain, touch, message, published))
    return sent


async def send_touch_now(deps: FollowUpDeps, follow_up_id: int, *, clock: Clock) -> SentTouch:
    """An operator's "send it now": the chain's next touch, whenever it was due."""
    async with deps.session_factory.begin() as session:
        chain = await session.scalar(
            select(FollowUp).where(FollowUp.id == follow_up_id).with_for_update(skip_locked=True)
        )
        if chain is None:
            if await session.get(FollowUp, follow_up_id) is None:
                raise FollowUpNotFound(f"No follow-up with id {follow_up_id}")
            raise FollowUpBusy(f"Follow-up {follow_up_id} is being sent right now")
        if chain.is_completed:
            raise FollowUpClosed(chain)
        touch = chain.touch_number
        message = await _send_touch(deps, session, chain, clock())
    if message is None:  # stopped because the client wrote; the stop is committed above
        raise FollowUpClosed(chain)
    published = await publish_stored(deps.session_factory, deps.broker, message)
    return SentTouch(chain, touch, message, published)


async def run_follow_up_scheduler(deps: FollowUpDeps, *, clock: Clock, interval: float) -> None:
    while True:
        # Waiting first gives client messages queued during a restart the chance to stop their chains.
        await asyncio.sleep(interval)
        try:
            async with deps.session_factory.begin() as session:
                await arm_follow_ups(session, intervals=deps.intervals, hours=deps.hours, clock=clock)
            await send_due_touches(deps, clock=clock)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Follow-up pass failed, next in {}s: {}", interval, exc)


def _claim_due(now: datetime, passed_over: set[int]):
    query = (
        select(FollowUp)
        .join(Contact, Contact.id == FollowUp.contact_id)
        .where(FollowUp.is_completed.is_(False), FollowUp.next_touch_at <= now, Contact.is_client.is_(True))
        .order_by(FollowUp.next_touch_at, FollowUp.id)
        .limit(1)
        .with_for_update(of=FollowUp, skip_locked=True)
    )
    return query.where(FollowUp.id.not_in(passed_over)) if passed_over else query


async def _send_touch(
    deps: FollowUpDeps, session: AsyncSession, chain: FollowUp, now: datetime
) -> Message | None:
    """Writes the touch and advances the chain (the caller commits and publishes), or stops the chain if the
    client has written since the silence began."""
    silent_since = chain.silent_since or chain.created_at
    if await _stopped_by_client(session, chain, silent_since, now):
        return None
    contact = await session.get_one(Contact, chain.contact_id)
    text = await _write_touch(deps, session, chain, contact, silent_since, now)
    if await _stopped_by_client(session, chain, silent_since, now):  # they wrote while Gemini was busy
        return None
    touch = chain.touch_number
    message = Message(
        contact_id=contact.id,
        phone_number=contact.phone_number,
        message_text=text,
        is_from_bot=True,
        timestamp=now,
        message_type="text",
        sent_by=SENT_BY,
        outgoing_id=f"follow-up-{chain.id}-{touch}",
    )
    session.add(message)
    chain.last_touch_at = now
    if touch >= chain_length(deps.intervals):
        chain.is_completed = True
        chain.stop_reason = "completed_5_touches"
        chain.stopped_at = now
        chain.next_touch_at = None
    else:
        chain.touch_number = touch + 1
        earliest = deps.hours.next_working_start(now + MIN_TOUCH_GAP)
        chain.next_touch_at = max(touch_due_at(silent_since, touch + 1, deps.intervals, deps.hours), earliest)
    await session.flush()
    logger.info("Follow-up {} touch {} to {}", chain.id, touch, contact.phone_number)
    return message


async def _stopped_by_client(
    session: AsyncSession, chain: FollowUp, silent_since: datetime, now: datetime
) -> bool:
    written = (
        await session.scalars(
            select(Message)
            .where(
                Message.contact_id == chain.contact_id,
                Message.is_from_bot.is_(False),
                Message.timestamp > silent_since,
            )
            .order_by(Message.timestamp, Message.id)
        )
    ).all()
    if not written:
        return False
    await stop_open_chain(session, chain.contact_id, turn_stance(written), now)
    await session.refresh(chain)
    return True


async def _write_touch(
    deps: FollowUpDeps,
    session: AsyncSession,
    chain: FollowUp,
    contact: Contact,
    silent_since: datetime,
    now: datetime,
) -> str:
    history = await recent_messages(session, contact.id, deps.max_context_messages)
    last_bot = next((m for m in reversed(history) if m.is_from_bot), None)
    last_client = next((m for m in reversed(history) if not m.is_from_bot), None)
    prompt = deps.prompt.render(
        touch_number=chain.touch_number,
        conversation_history=format_history(history, deps.hours.tz),
        last_bot_message=shown_text(last_bot) if last_bot else "(нет)",
        last_client_message=shown_text(last_client) if last_client else "(клиент ещё не писал)",
        follow_up_reason=REASONS.get(chain.reason or "", REASONS["no_response"]),
        hours_since_last_message=int((now - silent_since).total_seconds() // 3600),
        current_datetime=deps.hours.format(now),
    )
    try:
        message = (await deps.llm.generate_json(prompt, FollowUpText, purpose="follow_up")).message.strip()
    except GeminiUnusableAnswer as exc:
        message = ""
        logger.warning("Follow-up {} touch {}: {}", chain.id, chain.touch_number, exc.reason)
    if not message:  # blocked, cut off or empty: the code's own touch goes out instead of none
        return SAFE_TOUCHES.get(chain.touch_number, SAFE_TOUCHES[1])
    client_texts = [m.voice_transcription or m.message_text or "" for m in history if not m.is_from_bot]
    verdict = check_reply(message, deps.knowledge.full_text(), [deps.prompt.text], client_texts)
    if not verdict.ok:
        logger.warning(
            "Follow-up {} touch {} replaced by the safe fallback: {}; the model wrote {!r}",
            chain.id,
            chain.touch_number,
            verdict.reason,
            message[:300],
        )
    return verdict.text_or_fallback(message)
