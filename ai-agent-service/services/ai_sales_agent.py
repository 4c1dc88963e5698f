"""The AI sales agent: one reply to everything the client wrote since the bot last answered."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message
from services.call_booking import WorkingHours, decide_call
from services.gemini_client import GeminiBadOutput, GeminiClient
from services.knowledge_loader import KnowledgeBase, format_chunks
from services.reply_guard import check_reply
from utils.helpers import PROMPT_TEXT_LIMIT, format_history, shown_text, truncate_for_prompt
from utils.metrics import REPLIES, REPLIES_REPLACED
from utils.prompt_loader import PromptTemplate
from utils.timezone_helper import format_astana

SALES_PLACEHOLDERS = {"knowledge_base", "conversation_history", "new_message", "current_datetime"}
# At most this many unanswered messages are quoted as the new message; older ones stay in the history.
NEW_MESSAGE_LIMIT = 5
# ... and at most this many characters of them (each is already cut to PROMPT_TEXT_LIMIT).
NEW_MESSAGE_CHAR_LIMIT = 6_000
# The knowledge-base query also looks back at this many earlier client messages ("а сколько это стоит?").
QUERY_LOOKBACK = 3
KNOWLEDGE_CHUNKS = 4


class SalesAnswer(BaseModel):
    reply: str = Field(min_length=1, description="The message to send to the client")
    stance: Literal["yes", "no", "undecided", "asking"]
    agreed_to_call: bool
    proposed_call_time: str | None = Field(description="YYYY-MM-DDTHH:MM in Astana time, or null")
    confirmed_call_time: bool


class KnowledgeSearch:
    """The knowledge base off the event loop: a search may re-index changed PDFs, which takes a while."""

    def __init__(self, knowledge_base: KnowledgeBase):
        self.knowledge_base = knowledge_base
        self._full_text = ("", ())  # (text, the chunks it was joined from)

    async def relevant_text(self, query: str) -> str:
        chunks = await asyncio.to_thread(self.knowledge_base.search, query, KNOWLEDGE_CHUNKS)
        return format_chunks(chunks)

    def full_text(self) -> str:
        """Everything the base says, one passage per chunk: the figures a reply may quote.

        Joined once per index build and handed out as the same string, so the reply guard's figures derived
        from it are computed once too.
        """
        chunks = self.knowledge_base.chunks
        text, joined_from = self._full_text
        if chunks is not joined_from:
            text = "\n\n".join(chunk.text for chunk in chunks)
            self._full_text = (text, chunks)
        return text


@dataclass(frozen=True)
class SalesContext:
    """What the reply is written from: the unanswered client messages and the conversation before them."""

    pending: Sequence[Message]  # every unanswered client message, oldest first; the reply covers them all
    quoted: Sequence[Message]  # the newest of them, quoted to Gemini as the new message
    history: list[Message]


def sales_context(
    pending: Sequence[Message], recent: Sequence[Message], max_context_messages: int
) -> SalesContext:
    """The context from every unanswered client message and the contact's last messages, oldest first.

    `recent` must reach back max_context_messages + NEW_MESSAGE_LIMIT messages (or to the first one): the
    history is the last max_context_messages of them once the quoted ones are left out.
    """
    quoted = pending[-NEW_MESSAGE_LIMIT:]
    quoted_ids = {m.id for m in quoted}
    history = [m for m in recent if m.id not in quoted_ids][-max_context_messages:]
    return SalesContext(pending=pending, quoted=quoted, history=history)


async def draft_answer(
    context: SalesContext,
    *,
    llm: GeminiClient,
    prompt: PromptTemplate,
    knowledge: KnowledgeSearch,
    now: datetime,
    phone_number: str,
) -> SalesAnswer:
    """Gemini's answer to the context; touches no database session, so no connection waits on Gemini."""
    earlier_client_texts = [_query_text(m) for m in context.history if not m.is_from_bot][-QUERY_LOOKBACK:]
    query = " ".join([*(_query_text(m) for m in context.quoted), *earlier_client_texts])
    text = prompt.render(
        knowledge_base=await knowledge.relevant_text(query),
        conversation_history=format_history(context.history),
        new_message=truncate_for_prompt(
            "\n".join(shown_text(m) for m in context.quoted), NEW_MESSAGE_CHAR_LIMIT
        ),
        current_datetime=format_astana(now),
    )
    return await _ask(llm, text, phone_number)


async def store_reply(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    context: SalesContext,
    answer: SalesAnswer,
    *,
    prompt: PromptTemplate,
    knowledge: KnowledgeSearch,
    hours: WorkingHours,
    now: datetime,
) -> Message:
    """Books the call the answer agrees on, writes the reply as an unpublished bot message and marks the
    client messages it covers as answered.

    Runs inside the contact's locked transaction; the caller publishes the reply after the commit.
    """
    decision = await decide_call(
        session,
        contact,
        proposed_call_time=answer.proposed_call_time
        if answer.agreed_to_call or answer.confirmed_call_time
        else None,
        confirmed=answer.confirmed_call_time,
        now=now,
        hours=hours,
        source_message_id=trigger.message_id or "",
    )
    reply = Message(
        contact_id=contact.id,
        phone_number=contact.phone_number,
        message_text=decision.reply or _checked_reply(answer.reply, knowledge, prompt, contact.phone_number),
        is_from_bot=True,
        timestamp=now,
        message_type="text",
        sent_by="reply",
        outgoing_id=f"reply-{trigger.message_id}",
        reply_to_message_id=trigger.message_id,
    )
    session.add(reply)
    await session.execute(
        update(Message).where(Message.id.in_([m.id for m in context.pending])).values(answered_at=now)
    )
    trigger.stance = answer.stance
    await session.flush()
    REPLIES.inc()
    logger.info(
        "Reply to {} covers {} message(s), stance {}",
        contact.phone_number,
        len(context.pending),
        answer.stance,
    )
    return reply


async def unanswered_client_messages(session: AsyncSession, contact_id: int) -> Sequence[Message]:
    rows = await session.scalars(
        select(Message)
        .where(
            Message.contact_id == contact_id, Message.is_from_bot.is_(False), Message.answered_at.is_(None)
        )
        .order_by(Message.timestamp, Message.id)
    )
    return rows.all()


async def _ask(llm: GeminiClient, text: str, phone_number: str) -> SalesAnswer:
    try:
        return await llm.generate_json(text, SalesAnswer, purpose="sales_agent")
    except GeminiBadOutput as exc:
        logger.warning("Sales answer for {} unusable, asking again: {}", phone_number, exc)
    return await llm.generate_json(text, SalesAnswer, purpose="sales_agent")


def _checked_reply(text: str, knowledge: KnowledgeSearch, prompt: PromptTemplate, phone_number: str) -> str:
    """The model's text, or a safe fallback when it invents a discount or quotes the prompt."""
    verdict = check_reply(text, knowledge.full_text(), [prompt.text])
    if not verdict.ok:
        REPLIES_REPLACED.inc()
        logger.warning(
            "Reply to {} replaced by the safe fallback: {}; the model wrote {!r}",
            phone_number,
            verdict.reason,
            text[:300],
        )
    return verdict.text_or_fallback(text)


def _query_text(message: Message) -> str:
    return truncate_for_prompt(message.voice_transcription or message.message_text or "", PROMPT_TEXT_LIMIT)
