"""The AI moderator: decides from the conversation whether a contact is a (potential) client."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message
from services.conversation_text import format_history, recent_messages
from services.gemini_client import GeminiClient, GeminiUnusableAnswer
from utils.metrics import CLASSIFICATIONS
from utils.prompt_loader import PromptTemplate

MODERATOR_PLACEHOLDERS = {"contact_name", "full_name", "business_name", "conversation_history"}
NOT_GIVEN = "не указано"


class ModeratorVerdict(BaseModel):
    isClient: bool | None = Field(description="true: client, false: not a client, null: not enough data yet")
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str


async def classify_contact(
    session: AsyncSession,
    contact: Contact,
    *,
    llm: GeminiClient,
    prompt: PromptTemplate,
    max_context_messages: int,
    tz: ZoneInfo,
) -> ModeratorVerdict:
    """Asks Gemini and stores its verdict; on GeminiUnusableAnswer the contact stays as it was."""
    history = await recent_messages(session, contact.id, max_context_messages)
    verdict = await ask_moderator(contact, history, llm=llm, prompt=prompt, tz=tz)
    store_verdict(contact, verdict)
    await session.flush()
    return verdict


async def ask_moderator(
    contact: Contact,
    history: Sequence[Message],
    *,
    llm: GeminiClient,
    prompt: PromptTemplate,
    tz: ZoneInfo,
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
        CLASSIFICATIONS.labels("failed").inc()
        raise


def store_verdict(contact: Contact, verdict: ModeratorVerdict) -> None:
    contact.is_client = verdict.isClient
    contact.classification_confidence = verdict.confidence
    contact.classification_reasoning = verdict.reasoning
    result = {True: "client", False: "non_client", None: "unknown"}[verdict.isClient]
    CLASSIFICATIONS.labels(result).inc()
    logger.info(
        "Contact {} classified: {} ({:.2f}) — {}",
        contact.phone_number,
        result,
        verdict.confidence,
        verdict.reasoning,
    )
