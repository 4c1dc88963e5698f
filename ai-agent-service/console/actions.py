"""What the operator does from a conversation: take the chat over or hand it back, write to the client,
(re)classify the contact, stop or restart the follow-up chain, book, move or cancel a call. Each is a POST
with the session's CSRF token that calls the same service functions as the API (services/chat_actions.py,
services/call_changes.py), publishes what it stored after the commit, and sends the browser back to the
conversation with a notice; a refusal is a page saying why, in Russian."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.calls import publish_call_change
from api.deps import RuntimeDep
from config.runtime import Runtime
from console.conversation import PhonePath
from console.session import ConsoleRefusal, CsrfChecked
from models import Contact, ScheduledCall
from service_kit.outbox import relay
from services.call_booking import parse_proposed_time, why_not_text
from services.call_changes import (
    CallNotChangeable,
    CallNotFound,
    book_call_for_client,
    cancel_scheduled_call,
    move_scheduled_call,
)
from services.chat_actions import (
    ChatActionRefused,
    ContactNotFound,
    allow_follow_ups,
    hand_back,
    locked_contact,
    restart_follow_ups,
    set_client,
    stop_follow_ups,
    take_over,
    write_to_client,
)
from services.gemini_client import GeminiError, GeminiUnavailable

router = APIRouter(include_in_schema=False)
CallId = Annotated[int, Path(ge=1)]
ReplyText = Annotated[str, Form(min_length=1, max_length=4096)]
ReplyKey = Annotated[str, Form(pattern=r"^[0-9a-f]{32}$")]
SlotTime = Annotated[str, Form(max_length=40, description="datetime-local in the business's zone")]
REFUSALS = {
    "no_open_chain": "Дожим сейчас не идёт — останавливать нечего.",
    "not_a_client": "Дожим пишет только клиентам: сначала отметьте контакт как клиента.",
    "opted_out": "Клиент просил ему не писать: сначала снова разрешите дожим.",
    "chain_running": "Дожим уже идёт.",
}


@router.post("/console/conversations/{phone}/take-over")
async def take_over_chat(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath) -> RedirectResponse:
    async with _acting(runtime, phone) as session:
        await take_over(session, phone, None, runtime.agent.clock())
    return _back(phone, "taken_over")


@router.post("/console/conversations/{phone}/hand-back")
async def hand_back_chat(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath) -> RedirectResponse:
    async with _acting(runtime, phone) as session:
        await hand_back(session, phone)
    return _back(phone, "handed_back")


@router.post("/console/conversations/{phone}/reply")
async def reply(
    _: CsrfChecked, runtime: RuntimeDep, phone: PhonePath, text: ReplyText, key: ReplyKey
) -> RedirectResponse:
    """Sent through the gateway as the operator's message; the bot steps back as for a person on the phone."""
    if not text.strip():
        raise ConsoleRefusal(422, "Сообщение пустое.", back=_page(phone))
    pause_for = runtime.agent.limits.operator_pause
    async with _acting(runtime, phone) as session:
        message = await write_to_client(session, phone, text.strip(), key, runtime.agent.clock(), pause_for)
    if message is None:
        return _back(phone, "already_sent")
    await relay(runtime.sessions, runtime.publisher, runtime.agent.outbox, ids=[message.id])
    return _back(phone, "sent")


@router.post("/console/conversations/{phone}/classify")
async def classify(
    _: CsrfChecked,
    runtime: RuntimeDep,
    phone: PhonePath,
    verdict: Annotated[Literal["client", "not_client", "ask_model"], Form()],
) -> RedirectResponse:
    if verdict != "ask_model":
        async with _acting(runtime, phone) as session:
            await set_client(session, phone, verdict == "client", runtime.metrics)
        return _back(phone, "classified")
    async with _acting(runtime, phone) as session:
        contact_id = (await locked_contact(session, phone)).id
    try:
        await runtime.agent.reclassify(contact_id)
    except GeminiUnavailable as exc:
        raise ConsoleRefusal(503, "Модель сейчас недоступна, попробуйте позже.", back=_page(phone)) from exc
    except GeminiError as exc:
        raise ConsoleRefusal(502, "Модель не дала ответа; контакт не изменён.", back=_page(phone)) from exc
    return _back(phone, "classified")


@router.post("/console/conversations/{phone}/follow-ups/stop")
async def stop_chain(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath) -> RedirectResponse:
    async with _acting(runtime, phone) as session:
        await stop_follow_ups(session, phone, runtime.agent.clock())
    return _back(phone, "follow_ups_stopped")


@router.post("/console/conversations/{phone}/follow-ups/restart")
async def restart_chain(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath) -> RedirectResponse:
    intervals = tuple(runtime.settings.FOLLOW_UP_INTERVALS)
    async with _acting(runtime, phone) as session:
        await restart_follow_ups(session, phone, runtime.agent.clock(), intervals, runtime.agent.hours)
    return _back(phone, "follow_ups_restarted")


@router.post("/console/conversations/{phone}/follow-ups/allow")
async def allow_chain(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath) -> RedirectResponse:
    async with _acting(runtime, phone) as session:
        await allow_follow_ups(session, phone)
    return _back(phone, "follow_ups_allowed")


@router.post("/console/conversations/{phone}/calls")
async def book(_: CsrfChecked, runtime: RuntimeDep, phone: PhonePath, at: SlotTime) -> RedirectResponse:
    agent = runtime.agent
    slot = _slot(runtime, at, phone)
    async with _acting(runtime, phone) as session:
        contact = await locked_contact(session, phone)
        change = await book_call_for_client(session, contact, slot, agent.clock(), agent.hours, agent.calls)
    await publish_call_change(runtime, change)
    return _back(phone, "call_booked")


@router.post("/console/calls/{call_id}/cancel")
async def cancel(_: CsrfChecked, runtime: RuntimeDep, call_id: CallId) -> RedirectResponse:
    agent = runtime.agent
    phone = await _phone_of_call(runtime, call_id)
    async with _acting(runtime, phone) as session:
        change = await cancel_scheduled_call(
            session,
            call_id,
            "Cancelled by an operator in the console",
            agent.clock(),
            agent.hours,
            agent.calls,
        )
    await publish_call_change(runtime, change)
    return _back(phone, "call_cancelled")


@router.post("/console/calls/{call_id}/move")
async def move(_: CsrfChecked, runtime: RuntimeDep, call_id: CallId, at: SlotTime) -> RedirectResponse:
    agent = runtime.agent
    phone = await _phone_of_call(runtime, call_id)
    slot = _slot(runtime, at, phone)
    async with _acting(runtime, phone) as session:
        change = await move_scheduled_call(session, call_id, slot, agent.clock(), agent.hours, agent.calls)
    await publish_call_change(runtime, change)
    return _back(phone, "call_moved")


@asynccontextmanager
async def _acting(runtime: Runtime, phone: str) -> AsyncIterator[AsyncSession]:
    """One transaction for the action; what the services refuse becomes a page saying why."""
    hours = runtime.agent.hours
    try:
        async with runtime.sessions.begin() as session:
            yield session
    except ContactNotFound as exc:
        raise ConsoleRefusal(404, f"Разговора с номером +{phone} нет.") from exc
    except ChatActionRefused as exc:
        raise ConsoleRefusal(409, REFUSALS[exc.why], back=_page(phone)) from exc
    except CallNotFound as exc:
        raise ConsoleRefusal(404, "Такого созвона нет.", back=_page(phone)) from exc
    except CallNotChangeable as exc:
        if exc.problem is None or exc.next_free is None:
            message = "Этот созвон уже отменён или перенесён."
        else:
            message = (
                f"Нельзя: {why_not_text(exc.problem, hours)}. "
                f"Ближайшее свободное время — {hours.format_slot(exc.next_free)}."
            )
        raise ConsoleRefusal(409, message, back=_page(phone)) from exc


def _slot(runtime: Runtime, at: str, phone: str) -> datetime:
    slot = parse_proposed_time(at, runtime.agent.hours)
    if slot is None:
        raise ConsoleRefusal(422, f"Не понял время «{at}».", back=_page(phone))
    return slot


async def _phone_of_call(runtime: Runtime, call_id: int) -> str:
    async with runtime.sessions() as session:
        phone = await session.scalar(
            select(Contact.phone_number)
            .join(ScheduledCall, ScheduledCall.contact_id == Contact.id)
            .where(ScheduledCall.id == call_id)
        )
    if phone is None:
        raise ConsoleRefusal(404, "Такого созвона нет.")
    return phone


def _page(phone: str) -> str:
    return f"/console/conversations/{phone}"


def _back(phone: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{_page(phone)}?done={done}", status_code=status.HTTP_303_SEE_OTHER)
