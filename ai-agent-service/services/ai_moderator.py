"""The AI moderator: decides from the conversation whether a contact is a (potential) client."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import object_session

from config.database import lock_contact
from models import Contact, Message
from service_kit.runtime import autocommit_session
from services.conversation_text import format_history, recent_messages
from services.crm_events import CONTACT_CLASSIFIED, classified_data, record_crm_event
from services.gemini_client import GeminiClient, GeminiUnusableAnswer
from utils.metrics import AgentMetrics
from utils.prompt_loader import PromptTemplate

MODERATOR_PLACEHOLDERS = {"contact_name", "full_name", "business_name", "conversation_history"}
NOT_GIVEN = "не указано"


class ModeratorVerdict(BaseModel):
    isClient: bool | None = Field(description="true: client, false: not a client, null: not enough data yet")
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str
    opt_out: bool = Field(
        default=False, description="true only if the contact asks the business to stop writing to them"
    )


async def classify_contact(
    sessions: async_sessionmaker[AsyncSession],
    contact_id: int,
    *,
    llm: GeminiClient,
    prompt: PromptTemplate,
    max_context_messages: int,
    tz: ZoneInfo,
    metrics: AgentMetrics,
) -> tuple[Contact, ModeratorVerdict]:
    """An operator's forced reclassification: reads the conversation, asks Gemini with no session open, then
    stores the verdict under the contact's lock (a turn drafted meanwhile sees the change and drafts again).
    On GeminiUnusableAnswer the contact stays as it was."""
    async with autocommit_session(sessions) as session:
        contact = await session.get_one(Contact, contact_id)
        history = await recent_messages(session, contact_id, max_context_messages)
    verdict = await ask_moderator(contact, history, llm=llm, prompt=prompt, tz=tz, metrics=metrics)
    async with sessions.begin() as session:
        await lock_contact(session, contact.phone_number)
        contact = await session.get_one(Contact, contact_id)
        store_verdict(contact, verdict, metrics)
    return contact, verdict


async def ask_moderator(
    contact: Contact,
    history: Sequence[Message],
    *,
    llm: GeminiClient,
    prompt: PromptTemplate,
    tz: ZoneInfo,
    metrics: AgentMetrics,
) -> ModeratorVerdict:
    """Gemini's verdict on the conversation, asked twice when the first answer is unusable (blocked, cut
    off, off-schema); the second failure is raised, and the contact stays unclassified until its next
    message. Touches no database session, so no connection is held while Gemini thinks.
    """
    text = prompt.render(
        contact_name=contact.name or NOT_GIVEN,
        full_name=contact.full_name or NOT_GIVEN,
        business_name=contact.business_name or NOT_GIVEN,
        conversation_history=format_history(history, tz),
    )
    try:
        return await llm.generate_json(text, ModeratorVerdict, purpose="moderator")
    except GeminiUnusableAnswer as exc:
        logger.warning("Moderator answer for {} unusable, asking again: {}", contact.phone_number, exc)
    try:
        return await llm.generate_json(text, ModeratorVerdict, purpose="moderator")
    except GeminiUnusableAnswer as exc:
        logger.error("Contact {} stays unclassified: {}", contact.phone_number, exc.reason)
        metrics.classifications.labels("failed").inc()
        raise


def store_verdict(contact: Contact, verdict: ModeratorVerdict, metrics: AgentMetrics) -> None:
    """Stores the verdict on the contact (loaded in the caller's transaction); a change to client or not a
    client is recorded for the CRMs in that same transaction."""
    previous = contact.is_client
    contact.is_client = verdict.isClient
    contact.classification_confidence = verdict.confidence
    contact.classification_reasoning = verdict.reasoning
    session = object_session(contact)
    if verdict.isClient is not None and verdict.isClient != previous and session is not None:
        data = classified_data(verdict.isClient, verdict.confidence, verdict.reasoning, previous)
        record_crm_event(session, CONTACT_CLASSIFIED, contact, data)
    result = {True: "client", False: "non_client", None: "unknown"}[verdict.isClient]
    metrics.classifications.labels(result).inc()
    logger.info("Contact {} classified: {} ({:.2f})", contact.phone_number, result, verdict.confidence)
    # The model's reasoning quotes the client's words: only DEBUG may carry them.
    logger.debug("Contact {} classification reasoning: {}", contact.phone_number, verdict.reasoning)
