"""What the managers are told on their own WhatsApp: a booked, moved or cancelled call, a question the bot
could not answer, the bot stepping back from a chat, reminders and the morning digest. Each is a row of
`notifications` written in the transaction of the fact it reports, then published through the outbox as an
outgoing_messages body of kind "notification" (the gateway sends that kind only to a number in MANAGERS).
Without MANAGERS nothing is written: notifications are off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message, Notification, ScheduledCall
from service_kit.managers import Manager
from service_kit.publisher import Outgoing
from services.language import KK, RU, in_language, when_text
from utils.timezone_helper import WorkingHours

LAST_CLIENT_MESSAGES = 3  # what a manager reads when Gemini wrote no summary
PAUSE_REASONS = {
    "loop_suspected": "похоже на переписку с автоответчиком",
    "send_budget": "бот отправил в этот чат дневной лимит сообщений",
}


def manager_for(
    contact: Contact, managers: Sequence[Manager], call: ScheduledCall | None = None
) -> Manager | None:
    """Who hears about a contact: the manager of its call, else one of the managers in turn by contact."""
    if not managers:
        return None
    if call is not None and call.manager_phone:
        return next((m for m in managers if m.phone == call.manager_phone), managers[0])
    return managers[contact.id % len(managers)]


async def notify(
    session: AsyncSession,
    manager: Manager,
    kind: str,
    text: str,
    outgoing_id: str,
    *,
    contact_id: int | None = None,
    call_id: int | None = None,
    summary_pending: bool = False,
) -> int | None:
    """Writes the notification once (by its outgoing_id); its id, or None when it was written before."""
    return await session.scalar(
        insert(Notification)
        .values(
            kind=kind,
            manager_name=manager.name,
            manager_phone=manager.phone,
            contact_id=contact_id,
            call_id=call_id,
            text=text,
            outgoing_id=outgoing_id,
            summary_pending=summary_pending,
        )
        .on_conflict_do_nothing(index_elements=[Notification.outgoing_id])
        .returning(Notification.id)
    )


def who(contact: Contact) -> str:
    """ "Айгерим, ТОО Альфа — https://wa.me/77011234567": a client as a manager reads and taps it."""
    name = contact.full_name or contact.name or "имя не указано"
    company = f", {contact.business_name}" if contact.business_name else ""
    return f"{name}{company} — https://wa.me/{contact.phone_number}"


def last_client_words(messages: Sequence[Message]) -> str:
    said = [m.voice_transcription or m.message_text or "" for m in messages if not m.is_from_bot]
    return "\n".join(f"— {text[:300]}" for text in said[-LAST_CLIENT_MESSAGES:]) or "— (клиент ещё не писал)"


def call_booked_text(contact: Contact, call: ScheduledCall, hours: WorkingHours, summary: str) -> str:
    return (
        f"📞 Новый созвон: {when_text(call.scheduled_at, hours)} (время Астаны)\n"
        f"Клиент: {who(contact)}\n"
        f"{summary}"
    )


def call_changed_text(contact: Contact, call: ScheduledCall, hours: WorkingHours, what: str) -> str:
    return f"📞 Созвон {when_text(call.scheduled_at, hours)} {what}.\nКлиент: {who(contact)}"


def question_text(contact: Contact, question: str, promise: str) -> str:
    return (
        "❓ Вопрос, на который бот не нашёл ответа в базе знаний\n"
        f"Клиент: {who(contact)}\n"
        f"Вопрос: «{question[:1000]}»\n"
        f"Клиенту обещан ответ {promise}."
    )


def paused_text(contact: Contact, reason: str) -> str:
    why = PAUSE_REASONS.get(reason, reason)
    back = (
        "бот вернётся к чату завтра"
        if reason == "send_budget"
        else "бот вернётся к чату, когда вы снимете паузу"
    )
    return f"⏸ Бот остановился в чате: {why}.\nКлиент: {who(contact)}\nОтветьте клиенту сами; {back}."


# When a manager answers, as the client is promised it (and the manager told, in Russian).
PROMISES = {
    "within_the_hour": {RU: "в течение часа", KK: "бір сағат ішінде"},
    "from_morning": {RU: "{day} с {time}", KK: "{day} жұмыс уақыты басталғанда ({time})"},
    "today": {RU: "сегодня", KK: "бүгін"},
    "tomorrow": {RU: "завтра", KK: "ертең"},
}


def answer_promise(hours: WorkingHours, now: datetime, language: str = RU) -> str:
    """When a manager answers: within the hour in working hours, else from the next working morning."""
    if hours.is_working_time(now):
        return in_language(PROMISES["within_the_hour"], language)
    start = hours.local(hours.next_working_start(now))
    days = (start.date() - hours.local(now).date()).days
    names = {0: PROMISES["today"], 1: PROMISES["tomorrow"]}
    day = in_language(names[days], language) if days in names else f"{start:%d.%m}"
    return in_language(PROMISES["from_morning"], language).format(day=day, time=f"{start:%H:%M}")


@dataclass(frozen=True)
class NotificationOutbox:
    """service_kit's OutboxTable over notifications. A row whose Gemini summary is still being written waits
    for it; the repair loop sends it as it is once it is REPAIR_AFTER old."""

    queue: str  # the real name of outgoing_messages

    def claim(self, ids: Sequence[int] | None, older_than: timedelta | None, limit: int) -> Select:
        query = (
            select(Notification.id, Notification.manager_phone, Notification.text, Notification.outgoing_id)
            .where(Notification.published_at.is_(None))
            .order_by(Notification.created_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(Notification.id.in_(ids))
        if older_than is not None:
            query = query.where(Notification.created_at < func.now() - older_than)
        return query

    def outgoing(self, row: Any) -> Outgoing:
        body = {
            "phone_number": row.manager_phone,
            "message_text": row.text,
            "outgoing_id": row.outgoing_id,
            "sent_by": "notification",
            "kind": "notification",
        }
        return Outgoing(self.queue, body, message_id=row.outgoing_id)

    def row_id(self, row: Any) -> int:
        return row.id

    def mark_published(self, ids: list[int]) -> Update:
        return update(Notification).where(Notification.id.in_(ids)).values(published_at=func.now())
