"""One conversation: who the contact is, the chat's stage, every message newest first with who wrote it, and
under each client message what became of it and why (the decision log: services/decision_log.py), a guarded
reply showing what the model wanted to send and what went instead. The summary and the messages refresh
themselves (htmx polls .../live); the actions are in console/actions.py."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RuntimeDep, SessionDep
from config.runtime import Runtime
from console.labels import (
    Author,
    Stage,
    author_of,
    classification,
    decision_label,
    reason_text,
    stage_of,
)
from console.pages import render
from console.session import ConsoleRefusal, SignedIn
from models import Contact, FollowUp, Message, ScheduledCall
from services.call_calendar import scheduled_calls_of, taken_slots
from services.chat_actions import open_chain
from services.decision_log import LoggedDecision, decision_log

router = APIRouter(include_in_schema=False)
PhonePath = Annotated[str, Path(pattern=r"^[0-9]{5,20}$", description="The contact's phone, digits only")]
# Messages shown; older ones are counted, not shown (the API pages through everything).
TIMELINE_MESSAGES = 200
# What an action's redirect (?done=...) tells the operator.
NOTICES = {
    "taken_over": "Чат ваш: бот молчит, пока вы не вернёте его.",
    "handed_back": "Бот снова отвечает в этом чате.",
    "sent": "Сообщение отправлено клиенту. Бот не вмешивается в чат, пока идёт пауза.",
    "already_sent": "Это сообщение уже было отправлено.",
    "classified": "Классификация обновлена.",
    "follow_ups_stopped": "Дожим остановлен.",
    "follow_ups_restarted": "Дожим запущен заново с первого касания.",
    "follow_ups_allowed": "Боту снова можно писать этому клиенту.",
    "call_booked": "Созвон назначен: клиенту ушло подтверждение.",
    "call_cancelled": "Созвон отменён: клиенту ушло сообщение об отмене.",
    "call_moved": "Созвон перенесён: клиенту ушло сообщение о переносе.",
}


@dataclass(frozen=True)
class ShownDecision:
    title: str  # in the operator's words (console/labels.py)
    why: str  # the reason, in Russian where it is a usual one
    logged: LoggedDecision


@dataclass(frozen=True)
class TimelineEntry:
    message: Message
    author: Author
    text: str
    decisions: list[ShownDecision] = field(default_factory=list)


@dataclass(frozen=True)
class ConversationView:
    contact: Contact
    kind: tuple[str, str]
    stage: Stage
    entries: list[TimelineEntry]  # newest first
    not_shown: int  # older messages left out
    calls: list[ScheduledCall]  # upcoming, soonest first
    chain: FollowUp | None  # the open follow-up chain
    next_free: datetime  # the nearest slot a call can be booked in


@router.get("/console/conversations/{phone}")
async def conversation_page(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, phone: PhonePath
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return await render_conversation(request, runtime, session, phone, notice=notice)


@router.get("/console/conversations/{phone}/live")
async def conversation_live(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, phone: PhonePath
) -> HTMLResponse:
    view = await conversation_view(session, phone, runtime)
    return render(request, "conversation_live.html", {"view": view}, runtime=runtime)


async def render_conversation(
    request: Request,
    runtime: Runtime,
    session: AsyncSession,
    phone: str,
    *,
    notice: str | None = None,
) -> HTMLResponse:
    view = await conversation_view(session, phone, runtime)
    context = {
        "view": view,
        "notice": notice,
        "reply_key": uuid.uuid4().hex,  # the reply form's once-only key
        "pause_hours": f"{runtime.settings.OPERATOR_PAUSE_HOURS:g}",
        "slot_value": runtime.agent.hours.local(view.next_free).strftime("%Y-%m-%dT%H:%M"),
    }
    return render(request, "conversation.html", context, runtime=runtime)


async def conversation_view(session: AsyncSession, phone: str, runtime: Runtime) -> ConversationView:
    agent = runtime.agent
    now = agent.clock()
    contact = await session.scalar(select(Contact).where(Contact.phone_number == phone))
    if contact is None:
        raise ConsoleRefusal(404, f"Разговора с номером +{phone} нет.")
    # In the order the agent stored them: WhatsApp stamps a client's message to the second, so an answer
    # written right after a reply can carry an earlier time than the reply.
    newest = await session.scalars(
        select(Message)
        .where(Message.contact_id == contact.id)
        .order_by(Message.id.desc())
        .limit(TIMELINE_MESSAGES)
    )
    messages = list(newest)
    total = await session.scalar(select(func.count()).where(Message.contact_id == contact.id)) or 0
    logged, _ = await decision_log(session, contact, limit=2 * TIMELINE_MESSAGES)
    by_message: dict[int, list[LoggedDecision]] = defaultdict(list)
    for decision in logged:
        by_message[decision.message_pk].append(decision)
    calls = await scheduled_calls_of(session, contact.id, now)
    chain = await open_chain(session, contact.id)
    stage = stage_of(
        contact,
        now,
        answered_ever=any(message.is_from_bot for message in messages),
        next_call=calls[0].scheduled_at if calls else None,
        next_touch=chain.touch_number if chain else None,
        next_touch_at=chain.next_touch_at if chain else None,
    )
    return ConversationView(
        contact=contact,
        kind=classification(contact),
        stage=stage,
        entries=[_entry(message, by_message[message.id]) for message in messages],
        not_shown=total - len(messages),
        calls=calls,
        chain=chain,
        next_free=agent.hours.next_free_slot(now, await taken_slots(session, now, agent.calls)),
    )


def _entry(message: Message, decisions: list[LoggedDecision]) -> TimelineEntry:
    text = message.voice_transcription if message.is_voice and message.voice_transcription else None
    shown = [ShownDecision(decision_label(d.kind, d.reason), reason_text(d.reason), d) for d in decisions]
    return TimelineEntry(message, author_of(message), text or message.message_text or "", shown)
