"""What the CRMs are told, recorded as rows of crm_events in the transaction that commits the fact itself, so
an event exists exactly when its fact does (services/crm_delivery.py delivers them).

The CRMs a session records for are configured once on the session factory (app.py: `crm_session_info`), so a
hook needs nothing but the session its caller already holds; a factory without them (no CRM_WEBHOOK_URL nor
BITRIX24_WEBHOOK_URL, tests, tools) records nothing.

Every event reaches the webhook as `{"event_id", "type", "occurred_at", "contact", "data"}` (webhook_body).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from models import Contact, CrmEvent, ScheduledCall
from utils.timezone_helper import SLOT_MINUTES

WEBHOOK = "webhook"
BITRIX24 = "bitrix24"

CONTACT_CLASSIFIED = "contact.classified"
CALL_BOOKED = "call.booked"
CALL_CANCELLED = "call.cancelled"
CONTACT_OPTED_OUT = "contact.opted_out"
EVENT_TYPES = (CONTACT_CLASSIFIED, CALL_BOOKED, CALL_CANCELLED, CONTACT_OPTED_OUT)

_TARGETS_KEY = "crm_targets"


def crm_session_info(targets: Iterable[str]) -> dict[str, Any]:
    """The session factory's `info` that makes its sessions record events for `targets`."""
    return {_TARGETS_KEY: tuple(targets)}


def configured_targets(session: AsyncSession | Session) -> tuple[str, ...]:
    return tuple(session.info.get(_TARGETS_KEY, ()))


def record_crm_event(
    session: AsyncSession | Session,
    event_type: str,
    contact: Contact,
    data: dict[str, Any],
    *,
    targets: Sequence[str] | None = None,
    occurred_at: datetime | None = None,
) -> list[CrmEvent]:
    """Adds the event for each CRM (default: the session's configured ones) to the caller's transaction: it is
    delivered after the caller commits, and never if the caller rolls back. Returns the rows added (none when
    no CRM is configured, or none of them wants this event)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown CRM event type {event_type!r}")
    chosen = configured_targets(session) if targets is None else tuple(targets)
    event_id = uuid.uuid4()
    payload = {"contact": contact_snapshot(contact), "data": data}
    # Without `occurred_at` the database stamps the row with its transaction's time.
    when = {} if occurred_at is None else {"occurred_at": occurred_at}
    rows = [
        CrmEvent(
            event_id=event_id,
            target=target,
            event_type=event_type,
            contact_id=contact.id,
            payload=payload,
            **when,
        )
        for target in chosen
        if _wanted(target, event_type, data)
    ]
    session.add_all(rows)
    return rows


def _wanted(target: str, event_type: str, data: dict[str, Any]) -> bool:
    # Bitrix24 keeps clients as leads: a contact found not to be a client is no business of it.
    return not (target == BITRIX24 and event_type == CONTACT_CLASSIFIED and not data.get("is_client"))


def contact_snapshot(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "phone": f"+{contact.phone_number}",
        "name": contact.name,
        "full_name": contact.full_name,
        "business_name": contact.business_name,
        "is_client": contact.is_client,
    }


def classified_data(
    is_client: bool, confidence: float, reasoning: str, previous: bool | None
) -> dict[str, Any]:
    return {"is_client": is_client, "confidence": confidence, "reasoning": reasoning, "previous": previous}


def opted_out_data(opted_out_at: datetime, language: str) -> dict[str, Any]:
    return {"opted_out_at": opted_out_at.isoformat(), "language": language}


def call_data(call: ScheduledCall, *, reason: str | None = None) -> dict[str, Any]:
    """The data of call.booked and call.cancelled: the call's time in its own time zone (ISO with offset), its
    length, its manager; `reason` says why a call was cancelled. The call row must have its id (flushed)."""
    if call.id is None:
        raise ValueError("the call has no id yet: flush the session before recording its CRM event")
    zone = ZoneInfo(call.timezone or "Asia/Almaty")
    starts = call.scheduled_at.astimezone(zone)
    data: dict[str, Any] = {
        "call_id": call.id,
        "scheduled_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=SLOT_MINUTES)).isoformat(),
        "timezone": zone.key,
        "manager": (
            {"name": call.manager_name, "phone": f"+{call.manager_phone}"} if call.manager_phone else None
        ),
        "notes": call.notes,
    }
    if reason is not None:
        data["reason"] = reason
    return data


def webhook_body(event: CrmEvent) -> dict[str, Any]:
    """What the webhook receives for a row (the same for every attempt)."""
    return {
        "event_id": str(event.event_id),
        "type": event.event_type,
        "occurred_at": event.occurred_at.isoformat(),
        "contact": event.payload["contact"],
        "data": event.payload["data"],
    }


async def crm_backlog(session: AsyncSession) -> dict[str, Any]:
    """/stats: events waiting for a CRM, events a CRM refused for good, and how long the oldest has waited."""
    pending = CrmEvent.delivered_at.is_(None) & CrmEvent.parked_at.is_(None)
    backlog, parked, oldest = (
        await session.execute(
            select(
                func.count().filter(pending),
                func.count().filter(CrmEvent.parked_at.is_not(None)),
                func.extract("epoch", func.now() - func.min(CrmEvent.created_at).filter(pending)),
            )
        )
    ).one()
    return {"backlog": backlog, "parked": parked, "oldest_pending_s": round(float(oldest or 0), 1)}
