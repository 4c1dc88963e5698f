"""How a conversation is shown to Gemini: bounded texts, named attachments, "[time] Role: text" lines, and the
recent messages they are made from."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Message
from models.message import OPERATOR
from utils.timezone_helper import format_local

# Client texts are stored verbatim but shown to Gemini only up to this many characters each,
# so one pasted document cannot blow up the cost of a reply.
PROMPT_TEXT_LIMIT = 4000
# The whole history shown to Gemini; older lines are left out first. With the template, the knowledge
# chunks and the new message this keeps every prompt well under 30 000 characters.
HISTORY_CHAR_LIMIT = 10_000
HISTORY_OMITTED = "(более ранние сообщения не показаны)"
_ATTACHMENT_LABELS = {
    "image": "изображение",
    "document": "документ",
    "video": "видео",
    "audio": "аудио",
    "sticker": "стикер",
    "location": "геолокация",
    "other": "вложение",
}


def truncate_for_prompt(text: str, limit: int = PROMPT_TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + " …[сообщение обрезано]"


def shown_text(message: Message) -> str:
    """A message's text as Gemini sees it: bounded, with attachments named."""
    text = truncate_for_prompt(message.message_text or "")
    label = _ATTACHMENT_LABELS.get(message.message_type)
    if label:
        text = f"[{label}] {text}".rstrip()
    return text


def format_history(messages: Sequence[Message], tz: ZoneInfo, char_limit: int = HISTORY_CHAR_LIMIT) -> str:
    """ "[YYYY-MM-DD HH:MM] Клиент: text" / "... Бот: text" lines, oldest first, in the business's zone,
    the newest that fit into `char_limit`."""
    if not messages:
        return "(переписки пока нет)"
    kept: list[str] = []
    size = 0
    for message in reversed(messages):
        role = _role(message)
        # One line per message keeps the "[time] Role: text" shape even for multi-line texts.
        text = " ".join(shown_text(message).split())
        line = f"[{format_local(message.timestamp, tz)}] {role}: {text}"
        size += len(line) + 1
        if kept and size > char_limit:
            kept.append(HISTORY_OMITTED)
            break
        kept.append(line)
    return "\n".join(reversed(kept))


def _role(message: Message) -> str:
    # What a person typed on the business phone is the manager's word, not the bot's.
    if message.sent_by == OPERATOR:
        return "Менеджер"
    return "Бот" if message.is_from_bot else "Клиент"


async def recent_messages(session: AsyncSession, contact_id: int, limit: int) -> list[Message]:
    """The contact's last `limit` messages, oldest first."""
    query = select(Message).where(Message.contact_id == contact_id)
    query = query.order_by(Message.timestamp.desc(), Message.id.desc()).limit(limit)
    newest_first = (await session.scalars(query)).all()
    return list(reversed(newest_first))
