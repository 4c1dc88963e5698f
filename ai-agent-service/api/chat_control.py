"""The owner's controls over one chat: pause the bot (for some hours or until resumed), resume it, and let
follow-ups chase a client who once opted out."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from loguru import logger
from pydantic import BaseModel, Field

from api.contacts import ContactOut, PhonePath, contact_or_404
from api.deps import AgentDep, ApiKey, SessionDep
from config.database import lock_contact
from services.chat_control import MANUAL, pause, resume

router = APIRouter(dependencies=[ApiKey])


class PauseIn(BaseModel):
    hours: float | None = Field(default=None, gt=0, le=24 * 365, description="Omit to pause until resumed")


@router.post("/contacts/{phone}/pause", response_model=ContactOut)
async def pause_chat(session: SessionDep, agent: AgentDep, phone: PhonePath, body: PauseIn | None = None):
    """The bot stays silent in this chat (no replies, no touches) for `hours`, or until resumed."""
    now = agent.clock()
    hours = body.hours if body else None
    async with session.begin():
        contact = await contact_or_404(session, phone)
        await lock_contact(session, contact.phone_number)
        resume(contact)  # an operator's pause replaces whatever pause ran before
        pause(contact, MANUAL, now + timedelta(hours=hours) if hours else None, now)
    logger.info(
        "Bot paused in chat {} by an operator ({})",
        contact.phone_number,
        f"{hours} h" if hours else "until resumed",
    )
    return contact


@router.post("/contacts/{phone}/resume", response_model=ContactOut)
async def resume_chat(session: SessionDep, phone: PhonePath):
    """The bot answers this chat's new messages again (what came during the pause stays the person's)."""
    async with session.begin():
        contact = await contact_or_404(session, phone)
        await lock_contact(session, contact.phone_number)
        resume(contact)
    logger.info("Bot resumed in chat {}", contact.phone_number)
    return contact


@router.post("/contacts/{phone}/follow-ups/enable", response_model=ContactOut)
async def enable_follow_ups(session: SessionDep, phone: PhonePath):
    """Follow-ups may chase this client again, although they once asked to stop."""
    async with session.begin():
        contact = await contact_or_404(session, phone)
        await lock_contact(session, contact.phone_number)
        contact.opted_out_at = None
    return contact
