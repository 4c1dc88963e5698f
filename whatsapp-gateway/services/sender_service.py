"""The sender: outgoing_messages -> Wappi (reply or send, mark read), once per outgoing_id.

Only to the recipients services/recipients.py allows (a client's number that is not whitelisted; for a
notification, a manager's), and not through a reply or a read receipt into another chat (a group, a
channel, Status, a whitelisted number's chat).

Each attempt is claim -> commit -> wait -> call -> record: the outgoing row is claimed in a short
transaction (status sending, claimed_at) that also takes the send's turn under MAX_SENDS_PER_MINUTE
(turn_at, services/send_rate.py); the send sleeps until its turn and Wappi is called, both with no
transaction, row lock or pooled connection held, and the outcome is recorded in a second short transaction.
A claim whose turn is younger than CLAIM_LEASE is another worker's: the delivery is tried again later. A
send whose answer never came, or whose worker died before recording it (its claim expired), may have gone
out: before it is tried again, the chat is checked for it.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from config.database import SessionFactory
from models.message_log import FAILED, OUTGOING, REFUSED, SENDING, SENT, UNCERTAIN, MessageLog
from service_kit.clock import Clock
from service_kit.consumer import Delivery
from service_kit.errors import PermanentError, TransientError
from service_kit.runtime import autocommit_session
from services.chat_rules import chat_phone
from services.message_mapping import message_time
from services.queue_bodies import OutgoingMessage
from services.recipients import refusal_reason
from services.send_rate import take_turn
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import SendResult
from utils.metrics import GatewayMetrics
from utils.whatsapp_ids import normalize_phone, phone_from_chat_id

CLAIM_LEASE = timedelta(seconds=60)
# A claim is held until CLAIM_LEASE after its turn (a row claimed before turns existed: after its claim).
HELD = (func.coalesce(MessageLog.turn_at, MessageLog.claimed_at) > func.now() - CLAIM_LEASE).label("held")
# Wappi's part of an attempt is cut off well within the lease, so no claim expires while its holder may
# still send; a cut-off attempt leaves its claim to expire, and the next one looks in the chat first.
WAPPI_DEADLINE_S = 45.0
# How far back a chat is read to find a send whose answer was lost, and the clock skew allowed.
LOOKBACK_MESSAGES = 50
CLOCK_SKEW = timedelta(minutes=2)


@dataclass
class SenderDeps:
    wappi: WappiClient
    sessions: SessionFactory
    metrics: GatewayMetrics
    clock: Clock
    sends_per_minute: int  # MAX_SENDS_PER_MINUTE, across the whole WhatsApp number
    manager_phones: frozenset[str]  # MANAGERS' numbers: the only ones a notification goes to


@dataclass(frozen=True)
class Claim:
    """This attempt's hold on the outgoing row, and what the database knew when it was taken."""

    key: str
    written_at: datetime  # when the row was written: a lost send is looked for in the chat from then on
    may_have_gone_out: bool  # an earlier attempt may have reached Wappi: look in the chat before sending
    reply_chat_id: str | None  # the chat message_logs has for reply_to_message_id; None: ask Wappi
    wait_s: float  # until the send's turn under MAX_SENDS_PER_MINUTE


async def handle_outgoing(body: OutgoingMessage, delivery: Delivery, *, deps: SenderDeps) -> None:
    # The agent's outgoing_id, else the delivery's message_id (the publisher's, or one the consumer keeps
    # across retries), so two equal manual messages both go out.
    key = body.outgoing_id or delivery.message_id
    claim = await claim_or_refuse(deps, key, body)
    if claim is None:
        return
    if claim.wait_s > 0:
        await asyncio.sleep(claim.wait_s)  # nothing held meanwhile: the claim's lease runs from its turn
    async with asyncio.timeout(WAPPI_DEADLINE_S):
        if claim.may_have_gone_out and await recover(deps, claim, body):
            return
        await send(deps, claim, body)


async def claim_or_refuse(deps: SenderDeps, key: str, body: OutgoingMessage) -> Claim | None:
    """The claim on the row, with its turn (None when it was sent already); PermanentError, once the refusal
    is logged, for a recipient the gateway never sends to."""
    async with deps.sessions.begin() as session:
        refusal = await refusal_reason(session, body.phone_number, body.kind, deps.manager_phones)
        if refusal is None:
            # Committed before Wappi is called: the poller then takes the echo of this text for the bot's own.
            return await _claim(session, key, body, deps.sends_per_minute)
        await session.execute(_new_row(key, body, REFUSED))
    logger.warning("Refusing to send {}: {}", key, refusal)
    raise PermanentError(refusal)


async def _claim(
    session: AsyncSession, key: str, body: OutgoingMessage, sends_per_minute: int
) -> Claim | None:
    reply_chat_id = None
    if body.reply_to_message_id:
        reply_chat_id = await session.scalar(
            select(MessageLog.chat_id).where(MessageLog.message_id == body.reply_to_message_id)
        )
    # The turn first, so that a first delivery's row is written claimed in one statement. A redelivery of a
    # send that went out meanwhile spends a turn it does not use: the guard only errs on the slow side.
    turn = await take_turn(session, sends_per_minute)
    claimed = {"claimed_at": func.now(), "turn_at": turn.at}
    written_at = await session.scalar(
        _new_row(key, body, SENDING, **claimed).returning(MessageLog.created_at)
    )
    if written_at is not None:
        return Claim(key, written_at, False, reply_chat_id, turn.wait_s)
    # A redelivery: the lock is held for this transaction only, a few milliseconds.
    row = (
        await session.execute(
            select(MessageLog.queue_status, MessageLog.created_at, HELD)
            .where(MessageLog.outgoing_id == key)
            .with_for_update()
        )
    ).one()
    if row.queue_status == SENT:
        logger.info("Outgoing {} was already sent; skipping", key)
        return None
    if row.queue_status == SENDING and row.held:
        raise TransientError(f"outgoing {key} is being sent by another worker")
    # SENDING with an expired claim: its worker died after it may have reached Wappi, before it recorded.
    may_have_gone_out = row.queue_status in (SENDING, UNCERTAIN)
    await session.execute(
        update(MessageLog).where(MessageLog.outgoing_id == key).values(queue_status=SENDING, **claimed)
    )
    return Claim(key, row.created_at, may_have_gone_out, reply_chat_id, turn.wait_s)


def _new_row(key: str, body: OutgoingMessage, status: str, **claimed: object):
    """The outgoing row as first written; nothing when a delivery of the same key wrote it already."""
    return (
        insert(MessageLog)
        .values(
            outgoing_id=key,
            chat_id=f"{body.phone_number}@c.us",
            phone_number=body.phone_number,
            direction=OUTGOING,
            message_type="text",
            message_text=body.message_text,
            reply_to_message_id=body.reply_to_message_id,
            sent_by=body.sent_by,
            queue_status=status,
            payload=body.model_dump(exclude_unset=True),
            **claimed,
        )
        .on_conflict_do_nothing(index_elements=["outgoing_id"])
    )


async def recover(deps: SenderDeps, claim: Claim, body: OutgoingMessage) -> bool:
    """True when the chat shows that an earlier attempt went out after all (then recorded as sent)."""
    try:
        found = await already_in_chat(deps.wappi, body.phone_number, body.message_text, claim.written_at)
    except WappiError as exc:
        await _record(deps.sessions, claim.key, queue_status=UNCERTAIN, error=str(exc)[:2000])
        raise
    if found is None:
        return False
    await _record(
        deps.sessions,
        claim.key,
        queue_status=SENT,
        wappi_status="done",
        wappi_message_id=found,
        processed_at=deps.clock(),
    )
    deps.metrics.messages_sent.labels("confirmed_later").inc()
    logger.info("Outgoing {} had gone out despite the lost answer (Wappi id {})", claim.key, found)
    return True


async def already_in_chat(wappi: WappiClient, phone: str, text: str, since: datetime) -> str | None:
    """The Wappi id of a message the business sent `phone` with this text since `since`, if there is one."""
    recent = await wappi.get_messages(f"{phone}@c.us", limit=LOOKBACK_MESSAGES, order="desc")
    for message in recent:
        if (
            message.is_me
            and (message.body or "").strip() == text.strip()
            and message_time(message, since) >= since - CLOCK_SKEW
        ):
            return message.id
    return None


async def send(deps: SenderDeps, claim: Claim, body: OutgoingMessage) -> None:
    """Marks read and replies (or sends), then records the outcome; a Wappi failure is recorded and raised."""
    try:
        reply_to = await reply_target(deps.wappi, body, claim.reply_chat_id)
        if body.mark_as_read and reply_to:
            try:
                await deps.wappi.mark_read(reply_to)
            except WappiError as exc:
                logger.warning("Could not mark {} read: {}", reply_to, exc)
        result, kind = await deliver(deps.wappi, body.phone_number, body.message_text, reply_to)
    except WappiError as exc:
        await _record(
            deps.sessions,
            claim.key,
            queue_status=UNCERTAIN if exc.maybe_done else FAILED,
            wappi_status=f"error {exc.status}" if exc.status else "error",
            error=str(exc)[:2000],
            attempts=MessageLog.attempts + 1,
        )
        raise
    # error keeps the last failure: the log then shows why a send needed several attempts.
    await _record(
        deps.sessions,
        claim.key,
        queue_status=SENT,
        wappi_status=result.status or "done",
        wappi_message_id=result.message_id,
        processed_at=deps.clock(),
        attempts=MessageLog.attempts + 1,
    )
    deps.metrics.messages_sent.labels(kind).inc()
    logger.info("Sent {} to {} as {} (Wappi id {})", claim.key, body.phone_number, kind, result.message_id)


async def reply_target(wappi: WappiClient, body: OutgoingMessage, reply_chat_id: str | None) -> str | None:
    """reply_to when it is a message of this customer's chat: a reply (or read receipt) lands in the chat
    of the message replied to, which must not be another (e.g. whitelisted) number's."""
    reply_to = body.reply_to_message_id
    if not reply_to:
        return None
    # Rows keep a person's chat as <phone>@c.us (hidden-number chats included); skipped rows keep their
    # group, channel or Status id, which is nobody's phone.
    if reply_chat_id is not None:
        owner = phone_from_chat_id(reply_chat_id)
    else:
        owner = await _chat_phone(wappi, reply_to)
    if not owner or normalize_phone(owner) != normalize_phone(body.phone_number):
        logger.warning(
            "Message {} is not in {}'s chat (it is in {}); sending a new message instead of a reply",
            reply_to,
            body.phone_number,
            owner or "a chat that is not a person's, or an unknown one",
        )
        return None
    return reply_to


async def _chat_phone(wappi: WappiClient, message_id: str) -> str | None:
    """The phone whose own chat holds the message, as Wappi knows it; None when unknown or not a person's."""
    try:
        message = await wappi.get_message(message_id)
    except WappiError as exc:
        if exc.transient:
            raise
        return None
    if message is None or not message.chat_id:
        return None
    return chat_phone(message, message.chat_id) or None


async def deliver(wappi: WappiClient, phone: str, text: str, reply_to: str | None) -> tuple[SendResult, str]:
    """Reply when asked; a reply Wappi rejects (e.g. unknown message id) becomes a plain send."""
    if reply_to:
        try:
            return await wappi.reply(reply_to, text), "reply"
        except WappiError as exc:
            if exc.transient:
                raise
            logger.warning(
                "Reply to {} rejected ({}); sending as a new message instead", reply_to, exc.detail
            )
    return await wappi.send_text(phone, text), "send"


async def _record(sessions: SessionFactory, key: str, **outcome: object) -> None:
    """The attempt's outcome: one statement, committed on its own."""
    async with autocommit_session(sessions) as session:
        await session.execute(update(MessageLog).where(MessageLog.outgoing_id == key).values(**outcome))
