"""Turns the code answers without asking Gemini: a voice note too long to transcribe (the client is asked to
write instead) and a contact over its hourly Gemini budget (told once that a manager answers, the manager
told too; later messages of that hour get nothing). Run in the contact's locked transaction, like replies.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from models import Contact, Message
from models.decision import LLM_BUDGET, VOICE_TOO_LONG
from service_kit.managers import Manager
from services.language import KK, RU, in_language, language_of
from services.notifications import answer_promise, manager_for, notify, who
from services.replies import StoredReply, record_decision, store_code_reply
from utils.timezone_helper import WorkingHours

ASK_TO_WRITE = {
    RU: "Голосовое сообщение получилось слишком длинным, прослушать его я не смогу 🙏 "
    "Напишите, пожалуйста, текстом — отвечу сразу!",
    KK: "Дауыстық хабарлама тым ұзын, оны тыңдай алмаймын 🙏 "
    "Мәтінмен жазып жіберіңізші — бірден жауап беремін!",
}
MANAGER_TAKES_OVER = {
    RU: "Спасибо за сообщения! Передаю переписку менеджеру — он ответит вам {promise} 😊",
    KK: "Хабарламаларыңызға рахмет! Хат алмасуды менеджерге беремін — ол сізге {promise} жауап береді 😊",
}


async def store_ask_to_write(
    session: AsyncSession, contact: Contact, trigger: Message, pending: Sequence[Message], now: datetime
) -> StoredReply:
    text = in_language(ASK_TO_WRITE, language_of(contact))
    reply = await store_code_reply(session, contact, trigger, pending, text, now)
    record_decision(
        session, contact, trigger, reply, VOICE_TOO_LONG, "the voice note is over the gateway's limits", now
    )
    logger.info("Asked {} to write instead of a long voice note", contact.phone_number)
    return StoredReply(reply)


async def store_budget_notice(
    session: AsyncSession,
    contact: Contact,
    trigger: Message,
    pending: Sequence[Message],
    why: str,
    hours: WorkingHours,
    managers: Sequence[Manager],
    now: datetime,
) -> StoredReply:
    """The first turn over the hour's budget: the client hears a manager answers, the manager hears why."""
    language = language_of(contact)
    text = in_language(MANAGER_TAKES_OVER, language).format(promise=answer_promise(hours, now, language))
    reply = await store_code_reply(session, contact, trigger, pending, text, now)
    record_decision(session, contact, trigger, reply, LLM_BUDGET, why, now)
    stored = StoredReply(reply)
    manager = manager_for(contact, managers)
    if manager is not None:
        note = (
            f"⏸ Клиент пишет очень часто, бот не спрашивает модель до конца часа ({why}).\n"
            f"Клиент: {who(contact)}\nОтветьте клиенту сами."
        )
        outgoing_id = f"llm-budget-{trigger.message_id}"
        notification = await notify(session, manager, LLM_BUDGET, note, outgoing_id, contact_id=contact.id)
        stored.notifications += [notification] if notification else []
    logger.warning("Contact {} is over its Gemini budget: {}", contact.phone_number, why)
    return stored
