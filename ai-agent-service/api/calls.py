"""Booked calls: the managers' calendar by manager and day, and an operator cancelling or moving a call
(the client is told by code, the managers hear about it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.contacts import PageOut, ScheduledCallOut, page_of
from api.deps import AgentDep, ApiKey, PageDep, RuntimeDep, SessionDep
from config.runtime import Runtime
from models import ScheduledCall
from service_kit.outbox import relay
from services.call_booking import parse_proposed_time
from services.call_changes import (
    CallChange,
    CallNotChangeable,
    CallNotFound,
    cancel_scheduled_call,
    move_scheduled_call,
)

router = APIRouter(dependencies=[ApiKey])
CallId = Annotated[int, Path(ge=1)]


class CancelIn(BaseModel):
    reason: str = Field(default="Cancelled by an operator", max_length=500)


class RescheduleIn(BaseModel):
    scheduled_at: str = Field(
        description="The new time, ISO 8601; without an offset it is the business's time"
    )


@router.get("/scheduled-calls", response_model=PageOut[ScheduledCallOut])
async def list_scheduled_calls(
    session: SessionDep,
    page: PageDep,
    agent: AgentDep,
    call_status: Annotated[
        Literal["scheduled", "completed", "cancelled", "moved"] | None, Query(alias="status")
    ] = None,
    manager: Annotated[str | None, Query(description="The manager's phone or name")] = None,
    day: Annotated[date | None, Query(alias="date", description="A day in the business's time zone")] = None,
) -> dict:
    query = select(ScheduledCall)
    if call_status is not None:
        query = query.where(ScheduledCall.status == call_status)
    if manager is not None:
        query = query.where(
            (ScheduledCall.manager_phone == manager.lstrip("+")) | (ScheduledCall.manager_name == manager)
        )
    if day is not None:
        start = datetime.combine(day, datetime.min.time(), tzinfo=agent.hours.tz)
        query = query.where(
            ScheduledCall.scheduled_at >= start, ScheduledCall.scheduled_at < start + timedelta(days=1)
        )
    return await page_of(session, query.order_by(ScheduledCall.scheduled_at, ScheduledCall.id), page)


@router.post("/scheduled-calls/{call_id}/cancel", response_model=ScheduledCallOut)
async def cancel(session: SessionDep, runtime: RuntimeDep, call_id: CallId, body: CancelIn | None = None):
    agent = runtime.agent
    reason = (body or CancelIn()).reason
    return await _change_call(
        session,
        runtime,
        lambda: cancel_scheduled_call(session, call_id, reason, agent.clock(), agent.hours, agent.calls),
    )


@router.post("/scheduled-calls/{call_id}/reschedule", response_model=ScheduledCallOut)
async def reschedule(session: SessionDep, runtime: RuntimeDep, call_id: CallId, body: RescheduleIn):
    agent = runtime.agent
    to = parse_proposed_time(body.scheduled_at, agent.hours)
    if to is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"{body.scheduled_at!r} is not a time"
        )
    return await _change_call(
        session,
        runtime,
        lambda: move_scheduled_call(session, call_id, to, agent.clock(), agent.hours, agent.calls),
    )


async def _change_call(
    session: AsyncSession, runtime: Runtime, change: Callable[[], Awaitable[CallChange]]
) -> ScheduledCall:
    """Runs an operator's change in one transaction, then sends what it tells the client and the managers.
    An unknown call is 404; one that is not scheduled, or a time that cannot be booked, 409."""
    try:
        async with session.begin():
            done = await change()
    except CallNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except CallNotChangeable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    await publish_call_change(runtime, done)
    return done.call


async def publish_call_change(runtime: Runtime, change: CallChange) -> None:
    """After the commit: the client's message first, then the managers' notifications."""
    await relay(runtime.sessions, runtime.publisher, runtime.agent.outbox, ids=[change.client_message.id])
    await relay(
        runtime.sessions, runtime.publisher, runtime.agent.notification_outbox, ids=change.notifications
    )
