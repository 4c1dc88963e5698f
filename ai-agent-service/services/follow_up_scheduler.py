"""The follow-up chain: up to five touches to a client who went silent or answered vaguely.

Intervals count from the moment the client went silent (the bot's last message the client left unanswered;
touches themselves never count), and a touch due outside working hours waits for the next working-hours
start in Astana. A touch found more than LATE_GRACE past its due time outside working hours (the service was
down) waits for the next working-hours start, and after an outage overdue touches are spread a day apart.

Nothing is locked while Gemini writes a touch: claim → commit → call → record. A short transaction claims the
due chain (claimed_until: other workers pass it over until the claim expires), a short read takes the
conversation, Gemini writes with no session open, and a short transaction under the contact's lock records
the touch only if the chain is still open, still ours and not answered by the client meanwhile; the touch is
then published through the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import autocommit_session, lock_contact
from models import Contact, FollowUp, Message
from service_kit.clock import Clock
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from services.ai_sales_agent import KnowledgeSearch
from services.client_stance import turn_stance
from services.conversation_text import format_history, recent_messages, shown_text
from services.follow_up_arming import SENT_BY, arm_follow_ups, chain_length, touch_due_at
from services.gemini_client import GeminiClient, GeminiError, GeminiUnusableAnswer
from services.outbox import BotMessageOutbox
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
# How long a claimed chain is passed over by other workers: longer than Gemini's worst case (three attempts
# of 90 s and their backoff), so only a worker that died leaves a claim to expire.
CLAIM_FOR = timedelta(minutes=10)
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
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    outbox: BotMessageOutbox
    llm: GeminiClient
    prompt: PromptTemplate
    intervals: tuple[int, ...]
    hours: WorkingHours
    max_context_messages: int
    knowledge: KnowledgeSearch  # what the reply guard holds a touch's prices and discounts against
    clock: Clock


@dataclass(frozen=True)
class Claim:
    """A due chain this worker took; `until` (the database's time) is also the claim's token."""

    follow_up_id: int
    contact_id: int
    touch_number: int
    reason: str | None
    silent_since: datetime
    until: datetime


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

    def __init__(self, follow_up_id: int, stop_reason: str | None):
        super().__init__(f"Follow-up {follow_up_id} is already closed: {stop_reason}")


class FollowUpBusy(Exception):
    """Another worker is sending this chain's touch right now."""


async def stop_open_chain(session: AsyncSession, contact_id: int, stance: str | None, now: datetime) -> str:
    """A client message ends the contact's open chain; a clear yes or no is recorded as such. Returns the
    stop reason."""
    reason = _STOP_REASONS.get(stance or "", "client_responded")
    stopped = await session.scalars(
        update(FollowUp)
        .where(FollowUp.contact_id == contact_id, FollowUp.is_completed.is_(False))
        .values(is_completed=True, stop_reason=reason, stopped_at=now, next_touch_at=None)
        .returning(FollowUp.id)
    )
    for follow_up_id in stopped:
        logger.info("Follow-up {} stopped: {}", follow_up_id, reason)
    return reason


async def send_due_touches(
    deps: FollowUpDeps, *, heartbeat: Callable[[], None] = lambda: None
) -> list[SentTouch]:
    """Sends every touch that is due, one chain at a time; `heartbeat` after each."""
    now = deps.clock()
    working_start = deps.hours.next_working_start(now)
    passed_over: set[int] = set()
    sent = []
    for _ in range(TOUCHES_PER_PASS):
        async with deps.sessions.begin() as session:
            chain = await session.scalar(_due_chain(now, passed_over))
            if chain is None:
                break
            if working_start != now and now - chain.next_touch_at > LATE_GRACE:
                logger.info(
                    "Follow-up {} missed its working hours; next touch at {}", chain.id, working_start
                )
                chain.next_touch_at = working_start
                continue
            claim = await _claim(session, chain, now)
        if isinstance(claim, Claim):
            try:
                sent.append(await _write_and_record(deps, claim, now))
            except GeminiError as exc:
                logger.warning("Follow-up {} touch {} left due: {}", chain.id, claim.touch_number, exc)
                passed_over.add(chain.id)
                await _release(deps.sessions, claim)
            except (FollowUpClosed, FollowUpBusy) as exc:
                logger.info("No touch: {}", exc)
        heartbeat()
    return sent


async def send_touch_now(deps: FollowUpDeps, follow_up_id: int) -> SentTouch:
    """An operator's "send it now": the chain's next touch, whenever it was due."""
    now = deps.clock()
    async with deps.sessions.begin() as session:
        chain = await session.scalar(
            select(FollowUp)
            .where(FollowUp.id == follow_up_id, _unclaimed())
            .with_for_update(skip_locked=True)
        )
        if chain is None:
            raise await _why_not_claimable(session, follow_up_id)
        if chain.is_completed:
            raise FollowUpClosed(chain.id, chain.stop_reason)
        claim = await _claim(session, chain, now)
    if not isinstance(claim, Claim):  # stopped because the client wrote; the stop is committed above
        raise claim
    return await _write_and_record(deps, claim, now)


async def run_follow_up_scheduler(
    deps: FollowUpDeps, *, interval: float, heartbeat: Callable[[], None] = lambda: None
) -> None:
    while True:
        # Waiting first gives client messages queued during a restart the chance to stop their chains.
        await asyncio.sleep(interval)
        try:
            async with deps.sessions.begin() as session:
                await arm_follow_ups(session, intervals=deps.intervals, hours=deps.hours, now=deps.clock())
            await send_due_touches(deps, heartbeat=heartbeat)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Follow-up pass failed, next in {}s: {}", interval, exc)
        heartbeat()


def _unclaimed() -> ColumnElement[bool]:
    return or_(FollowUp.claimed_until.is_(None), FollowUp.claimed_until <= func.now())


def _due_chain(now: datetime, passed_over: set[int]) -> Select:
    query = (
        select(FollowUp)
        .join(Contact, Contact.id == FollowUp.contact_id)
        .where(
            FollowUp.is_completed.is_(False),
            FollowUp.next_touch_at <= now,
            Contact.is_client.is_(True),
            _unclaimed(),
        )
        .order_by(FollowUp.next_touch_at, FollowUp.id)
        .limit(1)
        .with_for_update(of=FollowUp, skip_locked=True)
    )
    return query.where(FollowUp.id.not_in(passed_over)) if passed_over else query


async def _claim(session: AsyncSession, chain: FollowUp, now: datetime) -> Claim | FollowUpClosed:
    """Claims the locked chain until CLAIM_FOR from now, or stops it if the client has written since the
    silence began (then no Gemini call is spent on it)."""
    silent_since = chain.silent_since or chain.created_at
    stopped = await _stopped_by_client(session, chain.contact_id, silent_since, now)
    if stopped is not None:
        return FollowUpClosed(chain.id, stopped)
    until = await session.scalar(
        update(FollowUp)
        .where(FollowUp.id == chain.id)
        .values(claimed_until=func.now() + CLAIM_FOR)
        .returning(FollowUp.claimed_until)
    )
    return Claim(chain.id, chain.contact_id, chain.touch_number, chain.reason, silent_since, until)


async def _why_not_claimable(session: AsyncSession, follow_up_id: int) -> Exception:
    chain = await session.get(FollowUp, follow_up_id)
    if chain is None:
        return FollowUpNotFound(f"No follow-up with id {follow_up_id}")
    if chain.is_completed:
        return FollowUpClosed(chain.id, chain.stop_reason)
    return FollowUpBusy(f"Follow-up {follow_up_id} is being sent right now")


async def _release(sessions: async_sessionmaker[AsyncSession], claim: Claim) -> None:
    """Gives the chain back for the next pass (its touch could not be written now)."""
    async with autocommit_session(sessions) as session:
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id == claim.follow_up_id, FollowUp.claimed_until == claim.until)
            .values(claimed_until=None)
        )


async def _write_and_record(deps: FollowUpDeps, claim: Claim, now: datetime) -> SentTouch:
    """Reads the conversation, has Gemini write the touch with no session open, records it and publishes."""
    async with autocommit_session(deps.sessions) as session:
        contact = await session.get_one(Contact, claim.contact_id)
        history = await recent_messages(session, contact.id, deps.max_context_messages)
    text = await _write_touch(deps, claim, history, now)
    chain, message = await _record_touch(deps, claim, contact, text, now)
    published = await relay(deps.sessions, deps.publisher, deps.outbox, ids=[message.id]) == 1
    return SentTouch(chain, claim.touch_number, message, published)


async def _record_touch(
    deps: FollowUpDeps, claim: Claim, contact: Contact, text: str, now: datetime
) -> tuple[FollowUp, Message]:
    """Stores the touch and advances the chain in one short transaction, or raises why not (a stop by the
    client's message is committed first)."""
    async with deps.sessions.begin() as session:
        # The lock a reply commits under: a touch and a reply to one client are stored one after the other.
        await lock_contact(session, contact.phone_number)
        chain = await session.get_one(FollowUp, claim.follow_up_id, with_for_update=True)
        refusal = await _refusal(session, chain, claim, now)
        if refusal is None:
            message = _add_touch(session, deps, chain, contact, text, now)
            await session.flush()
            logger.info("Follow-up {} touch {} to {}", chain.id, claim.touch_number, contact.phone_number)
            return chain, message
    raise refusal


async def _refusal(session: AsyncSession, chain: FollowUp, claim: Claim, now: datetime) -> Exception | None:
    """Why the written touch must not be stored: the chain closed, another worker took it over after the claim
    expired, or the client wrote while Gemini was busy (the chain is stopped here)."""
    if chain.is_completed:
        return FollowUpClosed(chain.id, chain.stop_reason)
    if chain.claimed_until != claim.until:
        return FollowUpBusy(f"Follow-up {chain.id} was taken over by another worker")
    stopped = await _stopped_by_client(session, chain.contact_id, claim.silent_since, now)
    return FollowUpClosed(chain.id, stopped) if stopped is not None else None


def _add_touch(
    session: AsyncSession, deps: FollowUpDeps, chain: FollowUp, contact: Contact, text: str, now: datetime
) -> Message:
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
    chain.claimed_until = None
    if touch >= chain_length(deps.intervals):
        chain.is_completed = True
        chain.stop_reason = "completed_5_touches"
        chain.stopped_at = now
        chain.next_touch_at = None
    else:
        chain.touch_number = touch + 1
        silent_since = chain.silent_since or chain.created_at
        earliest = deps.hours.next_working_start(now + MIN_TOUCH_GAP)
        chain.next_touch_at = max(touch_due_at(silent_since, touch + 1, deps.intervals, deps.hours), earliest)
    return message


async def _stopped_by_client(
    session: AsyncSession, contact_id: int, silent_since: datetime, now: datetime
) -> str | None:
    """Stops the contact's open chain if the client has written since `silent_since`; the stop reason."""
    written = (
        await session.scalars(
            select(Message)
            .where(
                Message.contact_id == contact_id,
                Message.is_from_bot.is_(False),
                Message.timestamp > silent_since,
            )
            .order_by(Message.timestamp, Message.id)
        )
    ).all()
    if not written:
        return None
    return await stop_open_chain(session, contact_id, turn_stance(written), now)


async def _write_touch(deps: FollowUpDeps, claim: Claim, history: list[Message], now: datetime) -> str:
    """Gemini's touch, checked by the reply guard; the code's own touch when Gemini's is unusable."""
    last_bot = next((m for m in reversed(history) if m.is_from_bot), None)
    last_client = next((m for m in reversed(history) if not m.is_from_bot), None)
    prompt = deps.prompt.render(
        touch_number=claim.touch_number,
        conversation_history=format_history(history, deps.hours.tz),
        last_bot_message=shown_text(last_bot) if last_bot else "(нет)",
        last_client_message=shown_text(last_client) if last_client else "(клиент ещё не писал)",
        follow_up_reason=REASONS.get(claim.reason or "", REASONS["no_response"]),
        hours_since_last_message=int((now - claim.silent_since).total_seconds() // 3600),
        current_datetime=deps.hours.format(now),
    )
    try:
        message = (await deps.llm.generate_json(prompt, FollowUpText, purpose="follow_up")).message.strip()
    except GeminiUnusableAnswer as exc:
        message = ""
        logger.warning("Follow-up {} touch {}: {}", claim.follow_up_id, claim.touch_number, exc.reason)
    if not message:  # blocked, cut off or empty: the code's own touch goes out instead of none
        return SAFE_TOUCHES.get(claim.touch_number, SAFE_TOUCHES[1])
    client_texts = [m.voice_transcription or m.message_text or "" for m in history if not m.is_from_bot]
    verdict = check_reply(message, deps.knowledge.full_text(), [deps.prompt.text], client_texts)
    if not verdict.ok:
        logger.warning(
            "Follow-up {} touch {} replaced by the safe fallback: {}; the model wrote {!r}",
            claim.follow_up_id,
            claim.touch_number,
            verdict.reason,
            message[:300],
        )
    return verdict.text_or_fallback(message)
