"""The follow-up scheduler: up to five touches to a client who went silent or answered vaguely.

Intervals count from the moment the client went silent (the bot's last message the client left unanswered;
touches themselves never count), and a touch due outside working hours waits for the next working-hours
start in Astana. A touch found more than LATE_GRACE past its due time outside working hours (the service was
down) waits for the next working-hours start, and after an outage overdue touches are spread a day apart.

Nothing is locked while Gemini writes a touch: claim → commit → call → record. A short transaction claims the
due chain, a short read takes the conversation, Gemini writes with no session open, and a short transaction
records the touch only if the chain is still open, still claimed by this worker and the client did not write
meanwhile (services/follow_up_chain.py); the touch is then published through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Contact, FollowUp, Message
from service_kit.clock import Clock
from service_kit.liveness import run_every
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from service_kit.runtime import autocommit_session
from services.ai_sales_agent import KnowledgeSearch
from services.chat_control import ChatLimits
from services.conversation_text import format_history, recent_messages, shown_text
from services.follow_up_arming import arm_follow_ups
from services.follow_up_chain import (
    Claim,
    FollowUpBusy,
    FollowUpClosed,
    FollowUpDeferred,
    claim_chain,
    due_chain,
    record_touch,
    release,
    spread_due_touches,
    unclaimed,
    why_not_claimable,
)
from services.gemini_client import GeminiClient, GeminiError, GeminiUnusableAnswer
from services.language import KK, PROMPT_NAMES, RU, in_language, language_of
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
    "reply_language",
}
# Due times are always inside working hours, so a touch this late at night was missed, not scheduled.
LATE_GRACE = timedelta(minutes=15)
TOUCHES_PER_PASS = 100
REASONS = {
    "no_response": "Клиент не ответил на наше последнее сообщение.",
    "vague_answer": "Клиент ответил неопределённо (например, «подумаю», «посмотрю») и больше не писал.",
}
# Written by code for when Gemini gives no usable touch: the chain goes on, politely.
SAFE_TOUCHES = {
    1: {
        RU: "Добрый день! 😊 Напоминаю о нашем разговоре. Если остались вопросы — я на связи.",
        KK: "Қайырлы күн! 😊 Біздің әңгімемізді еске саламын. Сұрақтарыңыз қалса — мен байланыстамын.",
    },
    5: {
        RU: "Здравствуйте! Понимаю, что сейчас, возможно, не самое подходящее время. "
        "Если в будущем понадобится помощь — всегда рады помочь! 😊",
        KK: "Сәлеметсіз бе! Қазір, бәлкім, ыңғайлы уақыт емес шығар, түсінемін. "
        "Болашақта көмек керек болса — әрқашан көмектесуге қуаныштымыз! 😊",
    },
}


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
    limits: ChatLimits  # a touch counts against the chat's daily send budget


@dataclass(frozen=True)
class SentTouch:
    follow_up: FollowUp
    touch_number: int
    message: Message
    published: bool


async def send_due_touches(
    deps: FollowUpDeps, *, heartbeat: Callable[[], None] = lambda: None
) -> list[SentTouch]:
    """Sends every touch that is due, one chain at a time; `heartbeat` after each."""
    now = deps.clock()
    working_start = deps.hours.next_working_start(now)
    passed_over: set[int] = set()
    sent = []
    async with deps.sessions.begin() as session:
        await spread_due_touches(session, now, deps.hours)
    for _ in range(TOUCHES_PER_PASS):
        async with deps.sessions.begin() as session:
            chain = await session.scalar(due_chain(now, passed_over))
            if chain is None:
                break
            if working_start != now and now - chain.next_touch_at > LATE_GRACE:
                logger.info(
                    "Follow-up {} missed its working hours; next touch at {}", chain.id, working_start
                )
                chain.next_touch_at = working_start
                continue
            claim = await claim_chain(session, chain, now)
        if isinstance(claim, Claim):
            try:
                sent.append(await _write_and_record(deps, claim, now))
            except GeminiError as exc:
                logger.warning("Follow-up {} touch {} left due: {}", chain.id, claim.touch_number, exc)
                passed_over.add(chain.id)
                await release(deps.sessions, claim)
            except (FollowUpClosed, FollowUpBusy, FollowUpDeferred) as exc:
                logger.info("No touch: {}", exc)
        heartbeat()
    return sent


async def send_touch_now(deps: FollowUpDeps, follow_up_id: int) -> SentTouch:
    """An operator's "send it now": the chain's next touch, whenever it was due."""
    now = deps.clock()
    async with deps.sessions.begin() as session:
        chain = await session.scalar(
            select(FollowUp).where(FollowUp.id == follow_up_id, unclaimed()).with_for_update(skip_locked=True)
        )
        if chain is None:
            raise await why_not_claimable(session, follow_up_id)
        if chain.is_completed:
            raise FollowUpClosed(chain.id, chain.stop_reason)
        claim = await claim_chain(session, chain, now)
    if not isinstance(claim, Claim):  # stopped because the client wrote; the stop is committed above
        raise claim
    return await _write_and_record(deps, claim, now)


async def run_follow_up_scheduler(
    deps: FollowUpDeps, *, interval: float, heartbeat: Callable[[], None] = lambda: None
) -> None:
    async def one_pass() -> None:
        async with deps.sessions.begin() as session:
            await arm_follow_ups(session, intervals=deps.intervals, hours=deps.hours, now=deps.clock())
        await send_due_touches(deps, heartbeat=heartbeat)

    # Waiting first gives client messages queued during a restart the chance to stop their chains.
    await run_every(interval, one_pass, what="Follow-up pass", heartbeat=heartbeat, wait_first=True)


async def _write_and_record(deps: FollowUpDeps, claim: Claim, now: datetime) -> SentTouch:
    """Reads the conversation, has Gemini write the touch with no session open, records it and publishes."""
    async with autocommit_session(deps.sessions) as session:
        contact = await session.get_one(Contact, claim.contact_id)
        history = await recent_messages(session, contact.id, deps.max_context_messages)
    text = await _write_touch(deps, claim, history, now, language_of(contact))
    chain, message = await record_touch(
        deps.sessions,
        claim,
        contact,
        text,
        now,
        intervals=deps.intervals,
        hours=deps.hours,
        messages_per_day=deps.limits.messages_per_day,
    )
    published = await relay(deps.sessions, deps.publisher, deps.outbox, ids=[message.id]) == 1
    return SentTouch(chain, claim.touch_number, message, published)


async def _write_touch(
    deps: FollowUpDeps, claim: Claim, history: list[Message], now: datetime, language: str
) -> str:
    """Gemini's touch in the client's `language`, checked by the reply guard; the code's own touch when
    Gemini's is unusable."""
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
        reply_language=PROMPT_NAMES[language],
    )
    try:
        message = (await deps.llm.generate_json(prompt, FollowUpText, purpose="follow_up")).message.strip()
    except GeminiUnusableAnswer as exc:
        message = ""
        logger.warning("Follow-up {} touch {}: {}", claim.follow_up_id, claim.touch_number, exc.reason)
    if not message:  # blocked, cut off or empty: the code's own touch goes out instead of none
        return in_language(SAFE_TOUCHES.get(claim.touch_number, SAFE_TOUCHES[1]), language)
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
    return verdict.text_or_fallback(message, language)
