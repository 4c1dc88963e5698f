"""The owner's controls over one chat: pause the bot (for some hours or until resumed), resume it, and let
follow-ups chase a client who once opted out (services/chat_actions.py, as the console does them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.contacts import ContactOut, PhonePath
from api.deps import AgentDep, ApiKey, SessionDep
from models import Contact
from services.chat_actions import ContactNotFound, allow_follow_ups, hand_back, take_over

router = APIRouter(dependencies=[ApiKey])


class PauseIn(BaseModel):
    hours: float | None = Field(default=None, gt=0, le=24 * 365, description="Omit to pause until resumed")


@router.post("/contacts/{phone}/pause", response_model=ContactOut)
async def pause_chat(session: SessionDep, agent: AgentDep, phone: PhonePath, body: PauseIn | None = None):
    """The bot stays silent in this chat (no replies, no touches) for `hours`, or until resumed."""
    now = agent.clock()
    until = now + timedelta(hours=body.hours) if body and body.hours else None
    return await _in_transaction(session, lambda: take_over(session, phone, until, now))


@router.post("/contacts/{phone}/resume", response_model=ContactOut)
async def resume_chat(session: SessionDep, phone: PhonePath):
    """The bot answers this chat's new messages again (what came during the pause stays the person's)."""
    return await _in_transaction(session, lambda: hand_back(session, phone))


@router.post("/contacts/{phone}/follow-ups/enable", response_model=ContactOut)
async def enable_follow_ups(session: SessionDep, phone: PhonePath):
    """Follow-ups may chase this client again, although they once asked to stop."""
    return await _in_transaction(session, lambda: allow_follow_ups(session, phone))


async def _in_transaction(session: AsyncSession, action: Callable[[], Awaitable[Contact]]) -> Contact:
    try:
        async with session.begin():
            return await action()
    except ContactNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
