"""What the calendar brings: CALL_REMINDER_MINUTES before a call its client gets a reminder written by code
and its manager one too, and on working days at DIGEST_TIME every manager gets the day's digest.

Exactly once each, across restarts and replicas: a call's reminders are claimed with SKIP LOCKED and marked
sent in the same transaction that stores them, and every message has a fixed outgoing_id (a second attempt
finds it written). A cancelled or moved call is no longer 'scheduled', so it is never reminded of; a call
booked closer than the reminder time has no reminder_due_at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from loguru import logger
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Contact, Notification, ScheduledCall
from service_kit.clock import Clock
from service_kit.liveness import run_every
from service_kit.managers import Manager
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from services.call_calendar import SCHEDULED, CallPolicy
from services.language import KK, RU, in_language, language_of, when_text
from services.notifications import NotificationOutbox, manager_for, notify, who
from services.outbox import BotMessageOutbox, bot_message
from utils.timezone_helper import WorkingHours, is_working_day

REMINDERS_PER_PASS = 100


@dataclass(frozen=True)
class CalendarDeps:
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    outbox: BotMessageOutbox
    notification_outbox: NotificationOutbox
    hours: WorkingHours
    policy: CallPolicy
    digest_time: time
    clock: Clock


CLIENT_REMINDER = {
    RU: "Напоминаем: {when} (время Астаны) у вас созвон {manager} 📞 До связи!",
    KK: "Еске саламыз: {when} (Астана уақытымен) {manager} сізге қоңырау шалады 📞 Байланыста болайық!",
}
WITH_MANAGER = {RU: "с нашим менеджером", KK: "менеджеріміз"}


def client_reminder_text(call: ScheduledCall, hours: WorkingHours, language: str = RU) -> str:
    manager = " ".join(filter(None, (in_language(WITH_MANAGER, language), call.manager_name)))
    when = when_text(call.scheduled_at, hours, language)
    return in_language(CLIENT_REMINDER, language).format(when=when, manager=manager)


def manager_reminder_text(
    call: ScheduledCall, contact: Contact, hours: WorkingHours, before: timedelta
) -> str:
    minutes = int(before.total_seconds() // 60)
    return f"⏰ Через {minutes} мин созвон: {when_text(call.scheduled_at, hours)}\nКлиент: {who(contact)}"


async def send_due_reminders(deps: CalendarDeps) -> int:
    """Stores and publishes the reminders that are due; returns how many calls were reminded of."""
    now = deps.clock()
    messages, notifications = [], []
    async with deps.sessions.begin() as session:
        due = await session.execute(
            select(ScheduledCall, Contact)
            .join(Contact, Contact.id == ScheduledCall.contact_id)
            .where(
                ScheduledCall.status == SCHEDULED,
                ScheduledCall.reminder_due_at <= now,
                ScheduledCall.scheduled_at > now,
                or_(ScheduledCall.client_reminded_at.is_(None), ScheduledCall.manager_reminded_at.is_(None)),
            )
            .order_by(ScheduledCall.scheduled_at)
            .limit(REMINDERS_PER_PASS)
            .with_for_update(of=ScheduledCall, skip_locked=True)
        )
        calls = due.all()
        for call, contact in calls:
            if call.client_reminded_at is None:
                text = client_reminder_text(call, deps.hours, language_of(contact))
                message = bot_message(
                    contact, text, now, sent_by="reminder", outgoing_id=f"reminder-{call.id}"
                )
                session.add(message)
                messages.append(message)
                call.client_reminded_at = now
            manager = manager_for(contact, deps.policy.managers, call)
            if call.manager_reminded_at is None and manager is not None:
                text = manager_reminder_text(call, contact, deps.hours, deps.policy.reminder)
                written = await notify(
                    session,
                    manager,
                    "call_reminder",
                    text,
                    f"call-reminder-{call.id}",
                    contact_id=contact.id,
                    call_id=call.id,
                )
                notifications += [written] if written else []
            call.manager_reminded_at = call.manager_reminded_at or now
        await session.flush()
    await relay(deps.sessions, deps.publisher, deps.outbox, ids=[m.id for m in messages])
    await relay(deps.sessions, deps.publisher, deps.notification_outbox, ids=notifications)
    if calls:
        logger.info("Reminded of {} call(s)", len(calls))
    return len(calls)


async def send_digest(deps: CalendarDeps) -> int:
    """Each manager's digest of the day, once, from DIGEST_TIME until working hours end on a working day."""
    now = deps.clock()
    local = deps.hours.local(now)
    if not deps.policy.managers or not is_working_day(local.date()):
        return 0
    if local.time() < deps.digest_time or now >= deps.hours.working_end(now):
        return 0
    written = []
    async with deps.sessions.begin() as session:
        for manager in deps.policy.managers:
            outgoing_id = f"digest-{local.date().isoformat()}-{manager.phone}"
            if await session.scalar(select(Notification.id).where(Notification.outgoing_id == outgoing_id)):
                continue
            text = await _digest_text(session, manager, deps.hours, now)
            notification = await notify(session, manager, "digest", text, outgoing_id)
            written += [notification] if notification else []
    await relay(deps.sessions, deps.publisher, deps.notification_outbox, ids=written)
    return len(written)


async def _digest_text(session: AsyncSession, manager: Manager, hours: WorkingHours, now: datetime) -> str:
    today = hours.day_start(now)
    yesterday = hours.day_start(today - timedelta(hours=12))
    calls = await session.execute(
        select(ScheduledCall, Contact)
        .join(Contact, Contact.id == ScheduledCall.contact_id)
        .where(
            ScheduledCall.status == SCHEDULED,
            ScheduledCall.manager_phone == manager.phone,
            ScheduledCall.scheduled_at >= today,
            ScheduledCall.scheduled_at < today + timedelta(days=1),
        )
        .order_by(ScheduledCall.scheduled_at)
    )
    new_clients = await session.scalar(
        select(func.count()).where(
            Contact.is_client.is_(True), Contact.created_at >= yesterday, Contact.created_at < today
        )
    )
    questions = await session.scalar(
        select(func.count()).where(
            Notification.kind == "question",
            Notification.created_at >= yesterday,
            Notification.created_at < today,
        )
    )
    lines = [f"☀️ Доброе утро, {manager.name}! Сводка на {hours.local(now):%d.%m.%Y}."]
    rows = calls.all()
    lines.append(f"Ваши созвоны сегодня: {len(rows)}" + (":" if rows else "."))
    lines += [f"• {hours.local(call.scheduled_at):%H:%M} — {who(contact)}" for call, contact in rows]
    lines.append(f"Новых клиентов вчера: {new_clients or 0}.")
    lines.append(f"Вопросов, на которые бот не нашёл ответа, вчера: {questions or 0}.")
    return "\n".join(lines)


async def run_calendar(deps: CalendarDeps, *, interval: float, heartbeat: Callable[[], None]) -> None:
    async def one_pass() -> None:
        await send_due_reminders(deps)
        await send_digest(deps)

    await run_every(interval, one_pass, what="Calendar pass", heartbeat=heartbeat)
