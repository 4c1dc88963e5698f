"""The conversations page: every chat, newest activity first, with who the contact is, their classification,
the chat's stage, the last message and how long the client has waited; search by phone or name, filters by
classification and state. Its rows refresh themselves (htmx polls /console/conversations/rows)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.deps import RuntimeDep, SessionDep
from console.labels import Author, Stage, author_of, classification, stage_of
from console.pages import render
from console.session import SignedIn
from models import Contact, FollowUp, Message, ScheduledCall
from services.call_calendar import SCHEDULED
from services.chat_control import not_paused

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
LAST_TEXT_CHARS = 140


class ListFilters(BaseModel):
    q: str = Field(default="", max_length=100, description="Part of a phone number or a name")
    kind: Literal["all", "client", "not_client", "unknown"] = "all"
    state: Literal["all", "waiting", "paused", "call", "follow_up", "opted_out"] = "all"
    page: int = Field(default=1, ge=1, le=10_000)


FiltersDep = Annotated[ListFilters, Query()]


@dataclass(frozen=True)
class ConversationRow:
    contact: Contact
    kind: tuple[str, str]  # classification label and css
    stage: Stage
    last_author: Author | None
    last_text: str
    last_at: datetime | None
    waiting_since: datetime | None  # the client's oldest message nobody has written back to yet


@router.get("/console/conversations")
async def conversations(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, filters: FiltersDep
) -> HTMLResponse:
    rows, more = await conversation_rows(session, filters, runtime.agent.clock())
    context = {"rows": rows, "more": more, "filters": filters, "query": _query(filters)}
    return render(request, "conversations.html", context, runtime=runtime)


@router.get("/console/conversations/rows")
async def conversation_rows_fragment(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, filters: FiltersDep
) -> HTMLResponse:
    rows, more = await conversation_rows(session, filters, runtime.agent.clock())
    context = {"rows": rows, "more": more, "filters": filters, "query": _query(filters)}
    return render(request, "conversation_rows.html", context, runtime=runtime)


async def conversation_rows(
    session: AsyncSession, filters: ListFilters, now: datetime
) -> tuple[list[ConversationRow], bool]:
    """One page of conversations and whether there are more."""
    query = _conversations(now)
    for condition in _conditions(filters, query, now):
        query = query.where(condition)
    offset = (filters.page - 1) * PAGE_SIZE
    found = (await session.execute(query.limit(PAGE_SIZE + 1).offset(offset))).all()
    return [_row(found_row, now) for found_row in found[:PAGE_SIZE]], len(found) > PAGE_SIZE


def _conversations(now: datetime) -> Select:
    last = aliased(Message)
    newest = (
        select(
            last.message_text,
            last.voice_transcription,
            last.is_from_bot,
            last.is_voice,
            last.sent_by,
            last.outgoing_id,
            last.timestamp,
        )
        .where(last.contact_id == Contact.id)
        .order_by(last.id.desc())  # stored last (see console/conversation.py)
        .limit(1)
        .lateral("newest")
    )
    business, client = aliased(Message), aliased(Message)
    last_business = (
        select(func.max(business.id))
        .where(business.contact_id == Contact.id, business.is_from_bot.is_(True))
        .scalar_subquery()
    )
    waiting_since = (
        select(func.min(client.timestamp))
        .where(
            client.contact_id == Contact.id,
            client.is_from_bot.is_(False),
            client.id > func.coalesce(last_business, 0),
        )
        .scalar_subquery()
    )
    chain = (
        select(FollowUp.touch_number, FollowUp.next_touch_at)
        .where(FollowUp.contact_id == Contact.id, FollowUp.is_completed.is_(False))
        .order_by(FollowUp.id.desc())
        .limit(1)
        .lateral("chain")
    )
    next_call = (
        select(func.min(ScheduledCall.scheduled_at))
        .where(
            ScheduledCall.contact_id == Contact.id,
            ScheduledCall.status == SCHEDULED,
            ScheduledCall.scheduled_at >= now,
        )
        .scalar_subquery()
    )
    return (
        select(
            Contact,
            newest,
            last_business.label("last_business_id"),
            waiting_since.label("waiting_since"),
            chain.c.touch_number.label("next_touch"),
            chain.c.next_touch_at,
            next_call.label("next_call"),
        )
        .select_from(Contact)
        .outerjoin(newest, true())
        .outerjoin(chain, true())
        .order_by(func.coalesce(newest.c.timestamp, Contact.created_at).desc(), Contact.id.desc())
    )


def _conditions(filters: ListFilters, query: Select, now: datetime) -> list[ColumnElement[bool]]:
    columns = query.selected_columns
    conditions: list[ColumnElement[bool]] = []
    text = filters.q.strip()
    if text:
        digits = re.sub(r"\D", "", text)
        matches = [
            column.icontains(text, autoescape=True)
            for column in (Contact.name, Contact.full_name, Contact.business_name)
        ]
        if digits:
            matches.append(Contact.phone_number.contains(digits, autoescape=True))
        conditions.append(or_(*matches))
    kinds = {"client": Contact.is_client.is_(True), "not_client": Contact.is_client.is_(False)}
    if filters.kind in kinds:
        conditions.append(kinds[filters.kind])
    elif filters.kind == "unknown":
        conditions.append(Contact.is_client.is_(None))
    states = {
        "waiting": columns.waiting_since.is_not(None) & Contact.is_client.is_not(False),
        "paused": ~not_paused(now),
        "call": columns.next_call.is_not(None),
        "follow_up": columns.next_touch.is_not(None),
        "opted_out": Contact.opted_out_at.is_not(None),
    }
    if filters.state in states:
        conditions.append(states[filters.state])
    return conditions


def _row(found: Any, now: datetime) -> ConversationRow:
    contact = found.Contact
    has_last = found.timestamp is not None
    text = (found.voice_transcription or found.message_text or "") if has_last else ""
    stage = stage_of(
        contact,
        now,
        answered_ever=found.last_business_id is not None,
        next_call=found.next_call,
        next_touch=found.next_touch,
        next_touch_at=found.next_touch_at,
    )
    return ConversationRow(
        contact=contact,
        kind=classification(contact),
        stage=stage,
        last_author=author_of(found) if has_last else None,
        last_text=text if len(text) <= LAST_TEXT_CHARS else text[:LAST_TEXT_CHARS] + "…",
        last_at=found.timestamp,
        waiting_since=found.waiting_since if contact.is_client is not False else None,
    )


def _query(filters: ListFilters) -> str:
    """The filters as a query string, for the live rows and the next page."""
    return urlencode({"q": filters.q, "kind": filters.kind, "state": filters.state, "page": filters.page})
