"""Admin API over the agent's data: contacts, conversations, follow-ups (and sending a touch now), calls,
forced reclassification."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import AgentDep, ApiKey, FollowUpsDep, Page, PageDep, RuntimeDep, SessionDep
from models import Contact, FollowUp, Message, ScheduledCall
from services.decision_log import decision_log
from services.follow_up_chain import FollowUpBusy, FollowUpClosed, FollowUpDeferred, FollowUpNotFound
from services.follow_up_scheduler import send_touch_now
from services.forget import ErasureNotSent, forget_contact
from services.gemini_client import GeminiError, GeminiUnavailable, GeminiUnusableAnswer

router = APIRouter(dependencies=[ApiKey])
ItemT = TypeVar("ItemT")
PhonePath = Annotated[
    str, Path(pattern=r"^\+?[0-9]{5,20}$", description="Digits, optionally with a leading +")
]


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    phone_number: str
    name: str | None
    full_name: str | None
    business_name: str | None
    is_client: bool | None
    classification_confidence: float | None
    classification_reasoning: str | None
    last_message_at: datetime | None
    paused_until: datetime | None  # with pause_reason set and paused_until null: paused until resumed
    pause_reason: str | None  # operator_replied, manual, send_budget, loop_suspected
    opted_out_at: datetime | None  # the client asked to stop: never chased
    language: str | None  # "ru" or "kk": what the client writes in (null: not clear yet, Russian is used)
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    message_id: str | None
    message_text: str | None
    is_from_bot: bool
    is_voice: bool
    voice_transcription: str | None
    message_type: str
    timestamp: datetime
    sent_by: str | None
    outgoing_id: str | None
    answered_at: datetime | None
    published_at: datetime | None
    stance: str | None


class FollowUpOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    touch_number: int
    next_touch_at: datetime | None
    last_touch_at: datetime | None
    is_completed: bool
    stop_reason: str | None
    reason: str | None
    silent_since: datetime | None
    stopped_at: datetime | None
    created_at: datetime


class SentTouchOut(BaseModel):
    touch_number: int
    published: bool  # False: the broker refused it for now; the outbox publishes it shortly
    message: MessageOut
    follow_up: FollowUpOut


class ScheduledCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    scheduled_at: datetime
    timezone: str
    status: str
    notes: str | None
    manager_name: str | None
    manager_phone: str | None
    created_at: datetime


class ContactDetail(ContactOut):
    message_count: int
    scheduled_calls: list[ScheduledCallOut]


class PageOut(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int


class DecisionOut(BaseModel):
    """What the product did with one client message, and why; for a guarded reply, what the model wanted
    to send (`model_text`) and what went instead (`sent_text`).

    `kind`: replied, guarded, handed_over, holding, opted_out, unclassified, not_a_client, paused,
    send_budget, loop_suspected, dead_lettered (its handling failed for good; the reason is the DLQ's);
    and, told from the messages with no `id`: covered (answered by the reply to the same turn, or by a
    person: `sent_text`), not_a_client (a known non-client's message, never answered), pending (nothing
    decided yet)."""

    id: int | None
    kind: str
    reason: str | None
    created_at: datetime
    message_id: str | None
    client_text: str | None
    model_text: str | None
    sent_text: str | None


class ClassificationOut(BaseModel):
    contact: ContactOut
    isClient: bool | None
    confidence: float
    reasoning: str


@router.get("/contacts", response_model=PageOut[ContactOut])
async def list_contacts(
    session: SessionDep,
    page: PageDep,
    is_client: Annotated[Literal["true", "false", "null"] | None, Query()] = None,
) -> dict:
    query = select(Contact)
    if is_client == "null":
        query = query.where(Contact.is_client.is_(None))
    elif is_client is not None:
        query = query.where(Contact.is_client.is_(is_client == "true"))
    return await page_of(
        session, query.order_by(Contact.last_message_at.desc().nulls_last(), Contact.id), page
    )


@router.get("/contacts/{phone}", response_model=ContactDetail)
async def get_contact(session: SessionDep, phone: PhonePath) -> dict:
    contact = await contact_or_404(session, phone)
    message_count = await session.scalar(select(func.count()).where(Message.contact_id == contact.id))
    calls = await session.scalars(
        select(ScheduledCall)
        .where(ScheduledCall.contact_id == contact.id)
        .order_by(ScheduledCall.scheduled_at)
    )
    return {
        **ContactOut.model_validate(contact).model_dump(),
        "message_count": message_count or 0,
        "scheduled_calls": calls.all(),
    }


@router.get("/contacts/{phone}/decisions", response_model=PageOut[DecisionOut])
async def list_decisions(session: SessionDep, page: PageDep, phone: PhonePath) -> dict:
    """The contact's decision log: what was done with each client message and why, newest first."""
    contact = await contact_or_404(session, phone)
    items, total = await decision_log(session, contact, limit=page.limit, offset=page.offset)
    return {"items": items, "total": total, "limit": page.limit, "offset": page.offset}


@router.get("/messages/{contact_id}", response_model=PageOut[MessageOut])
async def list_messages(session: SessionDep, page: PageDep, contact_id: Annotated[int, Path(ge=1)]) -> dict:
    if await session.get(Contact, contact_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"No contact with id {contact_id}")
    query = (
        select(Message)
        .where(Message.contact_id == contact_id)
        .order_by(Message.timestamp.desc(), Message.id.desc())
    )
    return await page_of(session, query, page)


@router.get("/follow-ups/active", response_model=PageOut[FollowUpOut])
async def active_follow_ups(session: SessionDep, page: PageDep) -> dict:
    query = (
        select(FollowUp).where(FollowUp.is_completed.is_(False)).order_by(FollowUp.next_touch_at, FollowUp.id)
    )
    return await page_of(session, query, page)


@router.get("/follow-ups/pending", response_model=PageOut[FollowUpOut])
async def pending_follow_ups(session: SessionDep, page: PageDep, agent: AgentDep) -> dict:
    """Touches that are due now (next_touch_at has passed) and not yet sent."""
    query = (
        select(FollowUp)
        .where(FollowUp.is_completed.is_(False), FollowUp.next_touch_at <= agent.clock())
        .order_by(FollowUp.next_touch_at, FollowUp.id)
    )
    return await page_of(session, query, page)


@router.post("/follow-ups/{follow_up_id}/send-now", response_model=SentTouchOut)
async def send_follow_up_now(follow_ups: FollowUpsDep, follow_up_id: Annotated[int, Path(ge=1)]) -> dict:
    """Sends the chain's next touch now, whenever it was due; the chain then continues on its schedule."""
    try:
        sent = await send_touch_now(follow_ups, follow_up_id)
    except FollowUpNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except (FollowUpClosed, FollowUpBusy, FollowUpDeferred) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except GeminiUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
    except GeminiError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    return {
        "touch_number": sent.touch_number,
        "published": sent.published,
        "message": sent.message,
        "follow_up": sent.follow_up,
    }


@router.post("/contacts/{phone}/classify", response_model=ClassificationOut)
async def reclassify_contact(agent: AgentDep, phone: PhonePath) -> dict:
    # A session of its own, closed before Gemini is asked: no connection waits on Gemini.
    async with agent.sessions() as session:
        contact_id = (await contact_or_404(session, phone)).id
    try:
        contact, verdict = await agent.reclassify(contact_id)
    except GeminiUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
    except GeminiUnusableAnswer as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            detail=f"Gemini gave no usable answer twice ({exc.reason}); the contact is unchanged",
        ) from exc
    except GeminiError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    return {"contact": contact, **verdict.model_dump()}


class ForgottenOut(BaseModel):
    erased: dict[str, int]  # rows deleted here, by table; the gateway erases its own on contact_erasures


@router.post("/contacts/{phone}/forget", response_model=ForgottenOut)
async def forget(runtime: RuntimeDep, phone: PhonePath) -> dict:
    """Erases the person in the agent and tells the gateway to erase them too; also for unknown numbers."""
    agent = runtime.agent
    erasures = runtime.queues["contact_erasures"].name
    try:
        erased = await forget_contact(
            agent.sessions,
            agent.publisher,
            erasures,
            phone.lstrip("+"),
            agent.clock(),
            agent.hours,
            agent.notification_outbox,
        )
    except ErasureNotSent as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="The broker did not take the erasure; nothing was erased",
        ) from exc
    return {"erased": erased}


async def contact_or_404(session: AsyncSession, phone: str) -> Contact:
    contact = await session.scalar(select(Contact).where(Contact.phone_number == phone.lstrip("+")))
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"No contact with phone number {phone}")
    return contact


async def page_of(session: AsyncSession, query: Select, page: Page) -> dict:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = await session.scalars(query.limit(page.limit).offset(page.offset))
    return {"items": items.all(), "total": total or 0, "limit": page.limit, "offset": page.offset}
