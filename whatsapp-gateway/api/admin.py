"""The admin endpoints, behind the X-API-Key: /stats, /test/send-message, /logs/messages, /metrics."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response
from loguru import logger
from sqlalchemy import func, select

from api.deps import ApiKey, Runtime, RuntimeDep
from config.queue import SHORT_NAMES
from models.message_log import INCOMING, OUTGOING, SENT, SKIPPED, MessageLog
from service_kit.publisher import Outgoing
from services.chat_rules import COUNTED_REASONS
from services.forget import erase_phone
from services.recipients import NOTIFICATION, notification_refusal, whitelist_refusal
from services.send_rate import SendQueue, send_queue
from utils.clock import local_day_bounds, to_local_iso
from utils.whatsapp_ids import digits_only, normalize_phone

router = APIRouter(dependencies=[ApiKey])


@router.get("/stats")
async def stats(runtime: RuntimeDep) -> dict[str, Any]:
    start, end = local_day_bounds(runtime.clock(), runtime.settings.tz)
    # created_at is the database's time; processed_at and transcribed_at are the service clock's.
    lag = await _database_lag(runtime)
    created_start, created_end = start - lag, end - lag
    received = await _count(
        runtime,
        MessageLog.direction == INCOMING,
        MessageLog.created_at >= created_start,
        MessageLog.created_at < created_end,
    )
    sent = await _count(
        runtime,
        MessageLog.direction == OUTGOING,
        MessageLog.queue_status == SENT,
        MessageLog.processed_at >= start,
        MessageLog.processed_at < end,
    )
    transcribed = await _count(
        runtime,
        MessageLog.transcribed_at >= start,
        MessageLog.transcribed_at < end,
        MessageLog.error.is_(None),
    )
    sizes = await runtime.queue_sizes()
    waiting = await _send_queue(runtime)
    return {
        "messages_received_today": received,
        "messages_sent_today": sent,
        "voice_transcribed_today": transcribed,
        "skipped_today": await _skipped(runtime, created_start, created_end),
        "queue_size": sizes if sizes is not None else dict.fromkeys(SHORT_NAMES.values()),
        "send_queue": {"waiting": waiting.waiting, "oldest_wait_s": waiting.oldest_wait_s},
    }


async def _send_queue(runtime: Runtime) -> SendQueue:
    """The sends (every replica's) waiting for their turn under MAX_SENDS_PER_MINUTE; sets the gauges."""
    async with runtime.sessions() as session:
        found = await send_queue(session)
    runtime.metrics.sends_waiting.set(found.waiting)
    runtime.metrics.oldest_send_wait.set(found.oldest_wait_s)
    return found


async def _count(runtime: Runtime, *conditions: Any) -> int:
    async with runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(MessageLog).where(*conditions)) or 0


async def _database_lag(runtime: Runtime) -> timedelta:
    """How far the service clock runs ahead of the database's (CLOCK_OFFSET_SECONDS, plus any skew): a
    created_at the database wrote at T happened at T + lag on the service clock."""
    async with runtime.sessions() as session:
        database_now = await session.scalar(select(func.now()))
    return runtime.clock() - database_now


async def _skipped(runtime: Runtime, start: datetime, end: datetime) -> dict[str, int]:
    async with runtime.sessions() as session:
        found = await session.execute(
            select(MessageLog.skip_reason, func.count())
            .where(MessageLog.direction == SKIPPED)
            .where(MessageLog.created_at >= start, MessageLog.created_at < end)
            .group_by(MessageLog.skip_reason)
        )
        counts = dict(found.tuples().all())
    return {reason: counts.get(reason, 0) for reason in COUNTED_REASONS}


@router.post("/test/send-message", status_code=202)
async def send_test_message(runtime: RuntimeDep, payload: Any = Body(...)) -> JSONResponse:
    if not isinstance(payload, dict):
        return JSONResponse({"detail": "body must be a JSON object"}, status_code=422)
    phone = payload.get("phone_number")
    # Before the contract check: a whitelisted number is refused in whatever form it is written, and so is
    # a notification to anyone but a manager.
    refusal = await _refusal(runtime, phone, payload.get("kind")) if isinstance(phone, str) else None
    if refusal is not None:
        return JSONResponse({"detail": refusal}, status_code=403)
    message = {**payload, "sent_by": "manual", "outgoing_id": payload.get("outgoing_id") or uuid.uuid4().hex}
    errors = runtime.queues.contracts["outgoing_messages"].errors(message)
    if errors:
        return JSONResponse({"detail": errors}, status_code=422)
    outgoing_id = message["outgoing_id"]
    await runtime.publisher.publish(
        Outgoing(runtime.queues["outgoing_messages"].name, message, message_id=outgoing_id)
    )
    logger.info("Manual message {} queued for {}", outgoing_id, message["phone_number"])
    return JSONResponse({"status": "queued", "outgoing_id": outgoing_id}, status_code=202)


async def _refusal(runtime: Runtime, phone: str, kind: object) -> str | None:
    if kind == NOTIFICATION:
        return notification_refusal(phone, runtime.settings.manager_phones)
    async with runtime.sessions() as session:
        return await whitelist_refusal(session, phone)


@router.get("/logs/messages")
async def message_logs(
    runtime: RuntimeDep,
    limit: int = Query(100, ge=1, le=1000),
    phone: str | None = Query(None, max_length=20),
    direction: Literal["incoming", "outgoing", "operator", "skipped"] | None = None,
) -> dict[str, Any]:
    query = select(MessageLog).order_by(MessageLog.id.desc()).limit(limit)
    if phone:
        # As written (digits) or in the normal form: `8 701 123 45 67` finds 77011234567.
        query = query.where(MessageLog.phone_number.in_({digits_only(phone), normalize_phone(phone)}))
    if direction:
        query = query.where(MessageLog.direction == direction)
    async with runtime.sessions() as session:
        rows = (await session.scalars(query)).all()
    return {"count": len(rows), "messages": [_log_entry(row, runtime) for row in rows]}


def _log_entry(row: MessageLog, runtime: Runtime) -> dict[str, Any]:
    def local(moment: datetime | None) -> str | None:
        return to_local_iso(moment, runtime.settings.tz) if moment else None

    return {
        "id": row.id,
        "message_id": row.message_id,
        "outgoing_id": row.outgoing_id,
        "chat_id": row.chat_id,
        "phone_number": row.phone_number,
        "direction": row.direction,
        "message_type": row.message_type,
        "message_text": row.message_text,
        "is_voice": row.is_voice,
        "wappi_status": row.wappi_status,
        "wappi_message_id": row.wappi_message_id,
        "queue_status": row.queue_status,
        "sent_by": row.sent_by,
        "attempts": row.attempts,
        "error": row.error,
        "skip_reason": row.skip_reason,
        "created_at": local(row.created_at),
        "processed_at": local(row.processed_at),
    }


@router.post("/contacts/{phone}/forget")
async def forget(
    runtime: RuntimeDep,
    phone: Annotated[
        str, Path(pattern=r"^\+?[0-9]{5,20}$", description="Digits, optionally with a leading +")
    ],
) -> dict[str, Any]:
    """Erases what the gateway keeps about the number (message logs, payloads, whitelist entry). The agent's
    own forget does this too, over contact_erasures, and erases the conversation there."""
    return {"erased": await erase_phone(runtime.sessions, phone.lstrip("+"))}


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    await runtime.queue_sizes()  # the gauges show the broker and the waiting sends at scrape time
    await _send_queue(runtime)
    return Response(runtime.metrics.exposition(), media_type=runtime.metrics.content_type)
