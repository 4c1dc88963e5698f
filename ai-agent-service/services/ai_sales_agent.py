"""The AI sales agent: Gemini's draft of one reply to everything the client wrote since the bot last answered
(what the code then checks and stores is services/replies.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Message
from services.conversation_text import PROMPT_TEXT_LIMIT, format_history, shown_text, truncate_for_prompt
from services.gemini_client import GeminiClient, GeminiTruncated, GeminiUnusableAnswer
from services.knowledge_base import KnowledgeBase
from services.knowledge_index import format_chunks
from services.language import PROMPT_NAMES
from utils.prompt_loader import PromptTemplate
from utils.timezone_helper import WorkingHours

SALES_PLACEHOLDERS = {
    "knowledge_base",
    "conversation_history",
    "new_message",
    "current_datetime",
    "reply_language",
}
# At most this many unanswered messages are quoted as the new message; older ones stay in the history.
NEW_MESSAGE_LIMIT = 5
# ... and at most this many characters of them (each is already cut to PROMPT_TEXT_LIMIT).
NEW_MESSAGE_CHAR_LIMIT = 6_000
# The knowledge-base query also looks back at this many earlier client messages ("а сколько это стоит?").
QUERY_LOOKBACK = 3
KNOWLEDGE_CHUNKS = 4
# Tries at a usable answer before the holding reply; after a cut-off answer the next try gets less context.
DRAFT_ATTEMPTS = 3


class SalesAnswer(BaseModel):
    reply: str = Field(min_length=1, description="The message to send to the client")
    stance: Literal["yes", "no", "undecided", "asking"]
    agreed_to_call: bool
    proposed_call_time: str | None = Field(description="YYYY-MM-DDTHH:MM in Astana time, or null")
    confirmed_call_time: bool
    opt_out: bool = Field(
        default=False, description="true only if the client asks to stop receiving messages from us"
    )
    cannot_make_it: bool = Field(
        default=False, description="true if the client says they cannot make the call already booked"
    )
    knowledge_gap: bool = Field(
        default=False,
        description="true if the knowledge base does not answer the client's question (a manager will)",
    )


class KnowledgeSearch:
    """The knowledge base off the event loop: a search may re-index changed PDFs, which takes a while."""

    def __init__(self, knowledge_base: KnowledgeBase):
        self.knowledge_base = knowledge_base
        self._full_text = ("", ())  # (text, the chunks it was joined from)

    async def relevant_text(self, query: str, limit: int = KNOWLEDGE_CHUNKS) -> str:
        chunks = await asyncio.to_thread(self.knowledge_base.search, query, limit)
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
    hours: WorkingHours,
    phone_number: str,
    language: str,
) -> SalesAnswer:
    """Gemini's answer to the context in the client's `language`, asked up to DRAFT_ATTEMPTS times while it
    is unusable (blocked, cut off, off-schema); the last GeminiUnusableAnswer is raised. Touches no database
    session."""
    earlier_client_texts = [_query_text(m) for m in context.history if not m.is_from_bot][-QUERY_LOOKBACK:]
    query = " ".join([*(_query_text(m) for m in context.quoted), *earlier_client_texts])
    new_message = truncate_for_prompt(
        "\n".join(shown_text(m) for m in context.quoted), NEW_MESSAGE_CHAR_LIMIT
    )
    history, chunks = context.history, KNOWLEDGE_CHUNKS
    for attempt in range(1, DRAFT_ATTEMPTS + 1):
        text = prompt.render(
            knowledge_base=await knowledge.relevant_text(query, chunks),
            conversation_history=format_history(history, hours.tz),
            new_message=new_message,
            current_datetime=hours.format(now),
            reply_language=PROMPT_NAMES[language],
        )
        try:
            return await llm.generate_json(text, SalesAnswer, purpose="sales_agent")
        except GeminiUnusableAnswer as exc:
            if attempt == DRAFT_ATTEMPTS:
                raise
            logger.warning("Sales answer for {} unusable ({}), asking again", phone_number, exc.reason)
            if isinstance(exc, GeminiTruncated):  # half the history and knowledge may fit
                history, chunks = history[len(history) // 2 :], max(1, chunks // 2)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def unanswered_and_recent(
    session: AsyncSession, contact_id: int, recent_limit: int
) -> tuple[list[Message], list[Message]]:
    """Every unanswered client message and the contact's last `recent_limit` messages, each oldest first, in
    one read (the two mostly overlap)."""
    newest = (
        select(Message.id)
        .where(Message.contact_id == contact_id)
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(recent_limit)
    )
    is_recent = Message.id.in_(newest.scalar_subquery())
    unanswered = and_(Message.is_from_bot.is_(False), Message.answered_at.is_(None))
    rows = await session.execute(
        select(Message, is_recent)
        .where(Message.contact_id == contact_id, or_(is_recent, unanswered))
        .order_by(Message.timestamp, Message.id)
    )
    pending: list[Message] = []
    recent: list[Message] = []
    for message, in_recent in rows:
        if not message.is_from_bot and message.answered_at is None:
            pending.append(message)
        if in_recent:
            recent.append(message)
    return pending, recent


def _query_text(message: Message) -> str:
    return truncate_for_prompt(message.voice_transcription or message.message_text or "", PROMPT_TEXT_LIMIT)
