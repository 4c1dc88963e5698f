"""The sender: outgoing_messages -> Wappi (reply or send, mark read), once per outgoing_id.

Only to a person's number that is not whitelisted (compared in its normal form, so `8 701…` is `7701…`):
not as the recipient, and not through a reply or a read receipt into another chat (a group, a channel,
Status, a whitelisted number's chat). A send whose answer never came, or whose attempt died before its
outcome was recorded, may have gone out: before it is tried again, the customer's chat is checked for it."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from config.database import SessionFactory
from config.queue import Delivery, PermanentError, TransientError
from models.message_log import FAILED, OUTGOING, REFUSED, SENDING, SENT, UNCERTAIN, MessageLog
from models.whitelist import is_whitelisted
from services.chat_rules import chat_phone
from services.message_mapping import message_time
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import SendResult
from utils.metrics import GatewayMetrics
from utils.whatsapp_ids import is_person_phone, normalize_phone, phone_from_chat_id

Clock = Callable[[], datetime]
# How far back a chat is read to find a send whose answer was lost, and the clock skew allowed.
LOOKBACK_MESSAGES = 50
CLOCK_SKEW = timedelta(minutes=2)


@dataclass
class SenderDeps:
    wappi: WappiClient
    sessions: SessionFactory
    metrics: GatewayMetrics
    clock: Clock


def outgoing_key(body: dict[str, Any], delivery: Delivery) -> str:
    """The idempotency key: the agent's outgoing_id, else the delivery's message_id (the publisher's,
    or a fresh one the consumer keeps across retries), so two equal manual messages both go out."""
    return body.get("outgoing_id") or delivery.message_id


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


async def chat_phone_of(session: AsyncSession, wappi: WappiClient, message_id: str) -> str | None:
    """The phone whose own chat holds the message; None when unknown or not a person's chat."""
    chat_id = await session.scalar(select(MessageLog.chat_id).where(MessageLog.message_id == message_id))
    if chat_id is not None:
        # Rows keep a person's chat as <phone>@c.us (hidden-number chats included); skipped rows keep
        # their group, channel or Status id, which is nobody's phone.
        return phone_from_chat_id(chat_id) or None
    try:
        message = await wappi.get_message(message_id)
    except WappiError as exc:
        if exc.transient:
            raise
        return None
    if message is None or not message.chat_id:
        return None
    return chat_phone(message, message.chat_id) or None


async def reply_target(
    session: AsyncSession, wappi: WappiClient, reply_to: str | None, phone: str
) -> str | None:
    """reply_to when it is a message of this customer's chat: a reply (or read receipt) lands in the chat
    of the message replied to, which must not be another (e.g. whitelisted) number's."""
    if not reply_to:
        return None
    owner = await chat_phone_of(session, wappi, reply_to)
    if owner is None or normalize_phone(owner) != normalize_phone(phone):
        logger.warning(
            "Message {} is not in {}'s chat (it is in {}); sending a new message instead of a reply",
            reply_to,
            phone,
            owner or "a chat that is not a person's, or an unknown one",
        )
        return None
    return reply_to


async def already_in_chat(deps: SenderDeps, phone: str, text: str, since: datetime) -> str | None:
    """The Wappi id of a message the business sent `phone` with this text since `since`, if there is one."""
    recent = await deps.wappi.get_messages(f"{phone}@c.us", limit=LOOKBACK_MESSAGES, order="desc")
    for message in recent:
        if (
            message.is_me
            and (message.body or "").strip() == text.strip()
            and message_time(message, since) >= since - CLOCK_SKEW
        ):
            return message.id
    return None


async def _record(session: AsyncSession, key: str, body: dict[str, Any], status: str) -> bool:
    """Logs the outgoing message; False when it was logged already (a redelivery)."""
    phone = body["phone_number"]
    inserted = await session.scalar(
        insert(MessageLog)
        .values(
            outgoing_id=key,
            chat_id=f"{phone}@c.us",
            phone_number=phone,
            direction=OUTGOING,
            message_type="text",
            message_text=body["message_text"],
            reply_to_message_id=body.get("reply_to_message_id"),
            sent_by=body.get("sent_by"),
            queue_status=status,
            payload=body,
        )
        .on_conflict_do_nothing(index_elements=["outgoing_id"])
        .returning(MessageLog.id)
    )
    return inserted is not None


async def refusal_reason(session: AsyncSession, phone: str) -> str | None:
    """Why nothing may be sent to `phone`; None when it is a customer's number."""
    if not is_person_phone(phone):
        return f"recipient {phone} is not a person's phone number: the gateway never sends to it"
    if await is_whitelisted(session, phone):
        return f"recipient {phone} is whitelisted: the gateway never sends to it"
    return None


async def handle_outgoing(body: dict[str, Any], delivery: Delivery, *, deps: SenderDeps) -> None:
    phone, text = body["phone_number"], body["message_text"]
    key = outgoing_key(body, delivery)

    async with deps.sessions() as session, session.begin():
        refusal = await refusal_reason(session, phone)
        # Committed before the send: the poller then takes the echo of this text for the bot's own.
        first_delivery = await _record(session, key, body, REFUSED if refusal else SENDING)
    if refusal:
        logger.warning("Refusing to send {}: {}", key, refusal)
        raise PermanentError(refusal)

    failure: WappiError | None = None
    async with deps.sessions() as session, session.begin():
        # The row lock makes a concurrent redelivery wait its turn instead of sending a second copy.
        row = await session.scalar(
            select(MessageLog).where(MessageLog.outgoing_id == key).with_for_update(skip_locked=True)
        )
        if row is None:
            raise TransientError(f"outgoing {key} is being sent by another worker")
        if row.queue_status == SENT:
            logger.info("Outgoing {} was already sent (Wappi id {}); skipping", key, row.wappi_message_id)
            return
        # SENDING on a redelivery: an earlier attempt died (process killed, database gone) after it may have
        # reached Wappi and before its outcome was committed.
        if row.queue_status == UNCERTAIN or (row.queue_status == SENDING and not first_delivery):
            found = await already_in_chat(deps, phone, text, row.created_at)
            if found is not None:
                row.queue_status, row.wappi_message_id, row.processed_at = SENT, found, deps.clock()
                row.wappi_status = "done"
                deps.metrics.messages_sent.labels("confirmed_later").inc()
                logger.info("Outgoing {} had gone out despite the lost answer (Wappi id {})", key, found)
                return
        row.attempts += 1
        row.queue_status = SENDING
        reply_to = await reply_target(session, deps.wappi, body.get("reply_to_message_id"), phone)
        if body.get("mark_as_read") and reply_to:
            try:
                await deps.wappi.mark_read(reply_to)
            except WappiError as exc:
                logger.warning("Could not mark {} read: {}", reply_to, exc)
        try:
            result, kind = await deliver(deps.wappi, phone, text, reply_to)
        except WappiError as exc:
            failure = exc
            row.error = str(exc)[:2000]
            row.wappi_status = f"error {exc.status}" if exc.status else "error"
            if exc.maybe_done:
                row.queue_status = UNCERTAIN
            elif not exc.transient or delivery.is_last_attempt:
                row.queue_status = FAILED
        else:
            # row.error keeps the last failure: the log then shows why a send needed several attempts.
            row.queue_status = SENT
            row.wappi_status = result.status or "done"
            row.wappi_message_id = result.message_id
            row.processed_at = deps.clock()
    if failure is not None:
        raise failure
    deps.metrics.messages_sent.labels(kind).inc()
    logger.info("Sent {} to {} as {} (Wappi id {})", key, phone, kind, result.message_id)
