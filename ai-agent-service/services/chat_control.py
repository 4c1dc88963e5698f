"""When the bot keeps quiet in a chat: a person took it over, an operator paused it, the day's send budget is
spent, or the other side looks like a bot answering a bot. Pure rules over a contact and its messages; the
callers store the outcome in the same transaction as the turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from sqlalchemy import ColumnElement, and_, or_

from models import Contact, Message
from utils.timezone_helper import WorkingHours

OPERATOR_REPLIED = "operator_replied"
MANUAL = "manual"
SEND_BUDGET = "send_budget"
LOOP_SUSPECTED = "loop_suspected"
# Bot messages that count against the day's budget: what the bot itself decided to send.
BUDGETED = ("reply", "follow_up")
# The loop breaker looks at this many exchanges; replies at least this alike count as the same (replies that
# differ in a tariff's name and price are about 0.93 alike: they are no loop).
LOOP_RUN = 3
NEARLY_IDENTICAL = 0.97


@dataclass(frozen=True)
class ChatLimits:
    operator_pause: timedelta  # OPERATOR_PAUSE_HOURS
    messages_per_day: int  # MAX_BOT_MESSAGES_PER_CHAT_PER_DAY
    loop_reply_seconds: float  # LOOP_REPLY_SECONDS
    llm_calls_per_hour: int = 30  # MAX_LLM_CALLS_PER_CONTACT_PER_HOUR


def is_paused(contact: Contact, now: datetime) -> bool:
    if contact.pause_reason is None:
        return False
    return contact.paused_until is None or contact.paused_until > now


def not_paused(now: datetime) -> ColumnElement[bool]:
    """is_paused's negation in SQL: no touch goes to (and no chain is armed for) a chat the bot left."""
    return or_(
        Contact.pause_reason.is_(None), and_(Contact.paused_until.is_not(None), Contact.paused_until <= now)
    )


def pause(contact: Contact, reason: str, until: datetime | None, now: datetime) -> None:
    """Pauses the bot in the chat; a pause already running longer (or until resumed) is kept."""
    if is_paused(contact, now) and (contact.paused_until is None or (until and contact.paused_until > until)):
        return
    contact.pause_reason, contact.paused_until = reason, until


def resume(contact: Contact) -> None:
    contact.pause_reason, contact.paused_until = None, None


def next_day_start(hours: WorkingHours, now: datetime) -> datetime:
    """Midnight after `now` in the business's zone: when a spent daily budget is whole again."""
    return hours.day_start(hours.day_start(now) + timedelta(hours=36))


def loop_suspected(messages: Sequence[Message], reply_seconds: float) -> str | None:
    """Why the chat looks like an auto-responder loop (None: it does not), from its messages oldest first:
    the other side answered the bot within `reply_seconds` LOOP_RUN times in a row, sent the same text
    LOOP_RUN times in a row, or the bot's own last LOOP_RUN replies are nearly identical."""
    client_texts = [_normalised(m) for m in messages if not m.is_from_bot][-LOOP_RUN:]
    if len(client_texts) == LOOP_RUN and len(set(client_texts)) == 1:
        return f"the other side sent the same text {LOOP_RUN} times in a row"
    quick = 0
    for previous, message in zip(messages, messages[1:], strict=False):
        if message.is_from_bot:
            continue
        answered_bot = previous.is_from_bot and previous.sent_by in BUDGETED
        after = (message.timestamp - previous.timestamp).total_seconds()
        # WhatsApp stamps whole seconds: an answer may look up to a second older than the bot's message.
        in_time = answered_bot and -1 <= after <= reply_seconds
        quick = quick + 1 if in_time else 0
    if quick >= LOOP_RUN:
        return f"the other side answered the bot within {reply_seconds:g} s {LOOP_RUN} times in a row"
    replies = [_normalised(m) for m in messages if m.is_from_bot and m.sent_by in BUDGETED][-LOOP_RUN:]
    if len(replies) == LOOP_RUN and all(_alike(replies[0], other) for other in replies[1:]):
        return f"the bot's last {LOOP_RUN} replies are nearly identical"
    return None


def _normalised(message: Message) -> str:
    return " ".join((message.voice_transcription or message.message_text or "").casefold().split())


def _alike(first: str, second: str) -> bool:
    return SequenceMatcher(None, first, second).ratio() >= NEARLY_IDENTICAL
