"""The console's words for what the data says: who wrote a message, what became of a client's message,
why the bot is paused, the contact's classification and the chat's stage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models import Contact
from models.message import OPERATOR
from services.chat_control import is_paused

CONSOLE_KEY_PREFIX = (
    "console-"  # outgoing_id of what an operator wrote in the console (services/chat_actions)
)

PAUSE_REASONS = {
    "operator_replied": "ответил человек",
    "manual": "чат ведёт оператор",
    "send_budget": "исчерпан дневной лимит сообщений",
    "loop_suspected": "похоже на автоответчик",
}

# What became of a client's message (models/decision.py and services/decision_log.py).
DECISIONS = {
    "replied": "Бот ответил",
    "guarded": "Проверка остановила ответ модели",
    "handed_over": "Вопрос передан менеджеру",
    "holding": "Модель не дала ответа: ушёл ответ-заглушка",
    "opted_out": "Клиент просил не писать: ушло подтверждение",
    "unclassified": "Пока неясно, клиент ли это: не отвечено",
    "not_a_client": "Не клиент: не отвечено",
    "paused": "Бот на паузе: не отвечено",
    "send_budget": "Дневной лимит сообщений: не отвечено",
    "loop_suspected": "Похоже на автоответчик: не отвечено",
    "llm_budget": "Лимит обращений к модели за час: ответит менеджер",
    "voice_too_long": "Слишком длинное голосовое: клиента попросили написать",
    "dead_lettered": "Не обработано: сообщение отложено в очередь ошибок",
    "covered": "Отвечено одним ответом вместе с другими сообщениями",
    "pending": "Ещё обрабатывается",
}
ANSWERED_BY_PERSON = "Ответил человек"


# The code writes why it did something in English (logs, API); the operator reads the usual reasons in
# Russian, anything else as the code wrote it.
_REASONS = (
    (r"amount (.+) is not in the knowledge base", r"сумма «\1» не из базы знаний"),
    (r"discount amount (.+) is not in the knowledge base", r"скидка «\1» не из базы знаний"),
    (r"percentage (.+) is not in the knowledge base", r"процент «\1» не из базы знаний"),
    (r"quotes the prompt (section|line) .*", "ответ цитирует инструкцию для модели"),
    (
        r"the reply names a call time the code did not book or offer",
        "ответ называет время созвона, которое не было забронировано или предложено",
    ),
    (
        r"the reply claims a booking the code did not make",
        "ответ сообщает о записи на созвон, которой не было",
    ),
    (r"proposed_call_time (.+) is not a time", r"модель предложила время созвона \1, которое не понять"),
    (r"the knowledge base has no answer: a manager will", "в базе знаний нет ответа: ответит менеджер"),
    (r"the client asked to stop", "клиент попросил больше не писать"),
    (r"answered by a person", "человек ответил сам"),
    (r"covered by the reply to the same turn", "ответ на следующее сообщение клиента ответил и на это"),
    (r"not a client: stored, never answered", "сообщение сохранено, не клиентам бот не отвечает"),
    (r"nothing decided yet", "решение ещё не принято"),
    (r"(?:sales agent|moderator) gave no usable answer: (.+)", r"модель не дала годного ответа (\1)"),
)


def reason_text(reason: str | None) -> str:
    if not reason:
        return ""
    for pattern, russian in _REASONS:
        if re.fullmatch(pattern, reason):
            return re.sub(pattern, russian, reason)
    paused = re.fullmatch(r"the bot is paused in this chat \((\w+)\)", reason)
    if paused:
        return f"бот на паузе в этом чате: {PAUSE_REASONS.get(paused.group(1), paused.group(1))}"
    return reason


@dataclass(frozen=True)
class Author:
    label: str
    css: str  # client, bot or owner


def author_of(message: Any) -> Author:
    """Who wrote a message (a Message, or a row with its is_from_bot, sent_by, outgoing_id, is_voice)."""
    if not message.is_from_bot:
        return Author("Клиент · голосовое, расшифровка" if message.is_voice else "Клиент", "client")
    if message.sent_by == OPERATOR:
        console = (message.outgoing_id or "").startswith(CONSOLE_KEY_PREFIX)
        return Author("Оператор · из консоли" if console else "Оператор · с телефона", "owner")
    return Author(
        {
            "reply": "Бот",
            "follow_up": "Бот · дожим",
            "reminder": "Бот · напоминание о созвоне",
            "manual": "Сообщение о созвоне от оператора",
        }.get(message.sent_by or "", "Бот"),
        "bot",
    )


def decision_label(kind: str, reason: str | None) -> str:
    if kind == "covered" and reason == "answered by a person":
        return ANSWERED_BY_PERSON
    return DECISIONS.get(kind, kind)


def classification(contact: Contact) -> tuple[str, str]:
    """("клиент · 92%", css) from the moderator's (or a person's) verdict."""
    confidence = contact.classification_confidence
    share = f" · {confidence:.0%}" if confidence is not None else ""
    if contact.is_client is True:
        return f"клиент{share}", "client"
    if contact.is_client is False:
        return f"не клиент{share}", "not-client"
    return "не определён", "unknown"


@dataclass(frozen=True)
class Stage:
    label: str
    css: str
    until: datetime | None = None  # the moment the label refers to (pause end, call, next touch)


def stage_of(
    contact: Contact,
    now: datetime,
    *,
    answered_ever: bool,
    next_call: datetime | None,
    next_touch: int | None,
    next_touch_at: datetime | None,
) -> Stage:
    """Where the chat is: opted out, paused (and why), a call booked, a follow-up touch coming, new (no one
    has written to the client yet) or talking."""
    if contact.opted_out_at is not None:
        return Stage("отписался", "opted-out")
    if is_paused(contact, now):
        why = PAUSE_REASONS.get(contact.pause_reason or "", contact.pause_reason or "")
        return Stage(f"пауза: {why}", "paused", contact.paused_until)
    if next_call is not None:
        return Stage("созвон назначен", "call", next_call)
    if next_touch is not None:
        return Stage(f"дожим: касание {next_touch}", "follow-up", next_touch_at)
    if not answered_ever:
        return Stage("новый", "new")
    return Stage("в диалоге", "talking")
