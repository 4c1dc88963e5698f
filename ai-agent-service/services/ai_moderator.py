"""The AI moderator: decides from the conversation whether a contact is a (potential) client."""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message
from services.gemini_client import GeminiBadOutput, GeminiClient
from utils.helpers import format_history, recent_messages
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
) -> ModeratorVerdict | None:
    """Asks Gemini (one retry on a broken answer) and stores the verdict on the contact.

    Returns None, leaving the contact as it was, when Gemini twice answers something unusable.
    """
    history = await recent_messages(session, contact.id, max_context_messages)
    verdict = await ask_moderator(contact, history, llm=llm, prompt=prompt)
    if verdict is not None:
        store_verdict(contact, verdict)
        await session.flush()
    return verdict


async def ask_moderator(
    contact: Contact, history: Sequence[Message], *, llm: GeminiClient, prompt: PromptTemplate
) -> ModeratorVerdict | None:
    """Gemini's verdict on the conversation (one retry on a broken answer); None when both were unusable.

    Touches no database session, so no connection is held while Gemini thinks.
    """
    text = prompt.render(
        contact_name=contact.name or NOT_GIVEN,
        full_name=contact.full_name or NOT_GIVEN,
        business_name=contact.business_name or NOT_GIVEN,
        conversation_history=format_history(history),
    )
    for attempt in (1, 2):
        try:
            return await llm.generate_json(text, ModeratorVerdict, purpose="moderator")
        except GeminiBadOutput as exc:
            logger.warning(
                "Moderator answer for {} unusable (attempt {}): {}", contact.phone_number, attempt, exc
            )
    logger.error("Contact {} stays unclassified: Gemini twice answered invalid JSON", contact.phone_number)
    CLASSIFICATIONS.labels("failed").inc()
    return None


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
