"""What a person does to one chat, from the API or the console: take it over from the bot and hand it back,
write to the client, set whether the contact is a client, stop or restart the follow-up chain, let the bot
chase a client who once opted out. Each runs in the caller's transaction under the contact's lock (the lock
a reply commits under), so it never crosses a turn the bot is committing; the caller publishes after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.database import lock_contact
from models import Contact, FollowUp, Message
from models.message import OPERATOR
from services.ai_moderator import ModeratorVerdict, store_verdict
from services.chat_control import MANUAL, OPERATOR_REPLIED, pause, resume
from services.follow_up_arming import touch_due_at
from services.follow_up_chain import stop_open_chain
from services.outbox import bot_message
from utils.metrics import AgentMetrics
from utils.timezone_helper import WorkingHours

# The follow-up chain's stop_reason when a person stops it, and the reason of one a person restarts.
STOPPED_BY_OPERATOR = "operator_stopped"
RESTARTED_BY_OPERATOR = "operator_restarted"


class ContactNotFound(LookupError):
    pass


class ChatActionRefused(Exception):
    """The action makes no sense for this chat as it is now; `why` says which of REFUSALS it is."""

    def __init__(self, why: str):
        super().__init__(REFUSALS[why])
        self.why = why


REFUSALS = {
    "no_open_chain": "the contact has no open follow-up chain",
    "not_a_client": "follow-ups chase clients only: mark the contact as a client first",
    "opted_out": "the client asked not to be written to: allow follow-ups again first",
    "chain_running": "the contact's follow-up chain is running already",
}


async def locked_contact(session: AsyncSession, phone: str) -> Contact:
    """The contact with this phone number (digits, a leading + allowed), locked until the transaction ends."""
    phone_number = phone.lstrip("+")
    await lock_contact(session, phone_number)
    contact = await session.scalar(select(Contact).where(Contact.phone_number == phone_number))
    if contact is None:
        raise ContactNotFound(f"No contact with phone number {phone}")
    return contact


async def take_over(session: AsyncSession, phone: str, until: datetime | None, now: datetime) -> Contact:
    """The bot stays silent in the chat (no replies, no touches) until `until`, or until handed back; this
    pause replaces whatever pause ran before."""
    contact = await locked_contact(session, phone)
    resume(contact)
    pause(contact, MANUAL, until, now)
    logger.info(
        "Bot paused in chat {} by an operator ({})",
        contact.phone_number,
        f"until {until.isoformat()}" if until else "until resumed",
    )
    return contact


async def hand_back(session: AsyncSession, phone: str) -> Contact:
    """The bot answers the chat's new messages again (what came during the pause stays the person's)."""
    contact = await locked_contact(session, phone)
    resume(contact)
    logger.info("Bot resumed in chat {}", contact.phone_number)
    return contact


async def allow_follow_ups(session: AsyncSession, phone: str) -> Contact:
    """Follow-ups may chase this client again, although they once asked to stop."""
    contact = await locked_contact(session, phone)
    contact.opted_out_at = None
    return contact


async def person_answered(
    session: AsyncSession, contact: Contact, now: datetime, pause_for: timedelta
) -> None:
    """A person wrote to the client (from the business phone or the console): what the client wrote before
    counts as answered, the open follow-up chain ends, and the bot keeps out of the chat for `pause_for`
    (OPERATOR_PAUSE_HOURS) unless a longer pause runs already."""
    await session.execute(
        update(Message)
        .where(
            Message.contact_id == contact.id, Message.is_from_bot.is_(False), Message.answered_at.is_(None)
        )
        .values(answered_at=now)
    )
    pause(contact, OPERATOR_REPLIED, now + pause_for, now)
    await stop_open_chain(session, contact.id, None, now, reason=OPERATOR_REPLIED)


async def write_to_client(
    session: AsyncSession, phone: str, text: str, key: str, now: datetime, pause_for: timedelta
) -> Message | None:
    """The operator's message to the client, stored for the outbox as the person's words (sent_by operator),
    and the bot steps back as when a person writes from the phone. `key` makes it once-only: None when a
    message with this key was written already (a form sent twice)."""
    contact = await locked_contact(session, phone)
    outgoing_id = f"console-{key}"
    if await session.scalar(select(Message.id).where(Message.outgoing_id == outgoing_id)) is not None:
        return None
    message = bot_message(contact, text, now, sent_by=OPERATOR, outgoing_id=outgoing_id)
    session.add(message)
    await person_answered(session, contact, now, pause_for)
    await session.flush()
    logger.info("Operator message {} to {}", outgoing_id, contact.phone_number)
    return message


async def set_client(session: AsyncSession, phone: str, is_client: bool, metrics: AgentMetrics) -> Contact:
    """A person decides whether the contact is a client; the CRMs hear of a change like of the model's."""
    contact = await locked_contact(session, phone)
    reasoning = "Set by an operator" + (": a client" if is_client else ": not a client")
    store_verdict(contact, ModeratorVerdict(isClient=is_client, confidence=1.0, reasoning=reasoning), metrics)
    return contact


async def stop_follow_ups(session: AsyncSession, phone: str, now: datetime) -> Contact:
    """Ends the open follow-up chain; the bot arms no other for the same silence."""
    contact = await locked_contact(session, phone)
    if await open_chain(session, contact.id) is None:
        raise ChatActionRefused("no_open_chain")
    await stop_open_chain(session, contact.id, None, now, reason=STOPPED_BY_OPERATOR)
    return contact


async def restart_follow_ups(
    session: AsyncSession, phone: str, now: datetime, intervals: tuple[int, ...], hours: WorkingHours
) -> FollowUp:
    """A new chain from touch 1, its silence counted from now (the first touch after the first interval)."""
    contact = await locked_contact(session, phone)
    if contact.is_client is not True:
        raise ChatActionRefused("not_a_client")
    if contact.opted_out_at is not None:
        raise ChatActionRefused("opted_out")
    if await open_chain(session, contact.id) is not None:
        raise ChatActionRefused("chain_running")
    chain = FollowUp(
        contact_id=contact.id,
        touch_number=1,
        silent_since=now,
        next_touch_at=touch_due_at(now, 1, intervals, hours),
        reason=RESTARTED_BY_OPERATOR,
    )
    session.add(chain)
    await session.flush()
    logger.info("Follow-up {} restarted for {} by an operator", chain.id, contact.phone_number)
    return chain


async def open_chain(session: AsyncSession, contact_id: int) -> FollowUp | None:
    return await session.scalar(
        select(FollowUp).where(FollowUp.contact_id == contact_id, FollowUp.is_completed.is_(False)).limit(1)
    )
