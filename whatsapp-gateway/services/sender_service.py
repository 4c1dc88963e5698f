"""The sender: outgoing_messages -> Wappi (reply or send, mark read), once per outgoing_id."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from config.database import SessionFactory
from config.queue import PermanentError, TransientError
from models.message_log import FAILED, OUTGOING, REFUSED, SENDING, SENT, MessageLog
from models.whitelist import is_whitelisted
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import SendResult
from utils.metrics import GatewayMetrics

Clock = Callable[[], datetime]


@dataclass
class SenderDeps:
    wappi: WappiClient
    sessions: SessionFactory
    metrics: GatewayMetrics
    clock: Clock


def outgoing_key(body: dict[str, Any]) -> str:
    """The idempotency key: the agent's outgoing_id, else one derived from the body (a redelivery matches)."""
    if body.get("outgoing_id"):
        return body["outgoing_id"]
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return "auto-" + hashlib.sha256(canonical).hexdigest()[:40]


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


async def _record(deps: SenderDeps, key: str, body: dict[str, Any], status: str) -> None:
    phone = body["phone_number"]
    async with deps.sessions() as session, session.begin():
        await session.execute(
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
        )


async def handle_outgoing(body: dict[str, Any], attempt: int, *, deps: SenderDeps) -> None:
    phone, text = body["phone_number"], body["message_text"]
    reply_to = body.get("reply_to_message_id")
    key = outgoing_key(body)

    async with deps.sessions() as session:
        refused = await is_whitelisted(session, phone)
    if refused:
        await _record(deps, key, body, REFUSED)
        logger.warning("Refusing to send {} to whitelisted number {}", key, phone)
        raise PermanentError(f"recipient {phone} is whitelisted: the gateway never sends to it")
    await _record(deps, key, body, SENDING)

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
        row.attempts += 1
        row.queue_status = SENDING
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
            if not exc.transient:
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
