"""The voice worker: voice_transcription -> audio from Wappi -> Gemini transcript -> incoming_messages.

A voice note is never dropped: audio that cannot be downloaded or heard is forwarded with a text
saying so. One longer than MAX_VOICE_SECONDS or larger than MAX_VOICE_BYTES is not transcribed (nor read
whole into memory): it goes on marked voice_too_long, and the agent asks the client to write instead.
The result goes out through the outbox (the message_logs row of the voice note), whose direction says
whose note it was: one an operator recorded on the business phone arrives as the operator's."""

from dataclasses import dataclass
from typing import Any

from loguru import logger
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from config.database import SessionFactory
from models.message_log import INCOMING, OPERATOR, PENDING, TO_INCOMING, MessageLog
from service_kit.clock import Clock
from service_kit.consumer import Delivery
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from services.message_mapping import BY_OPERATOR
from services.outbox import MessageLogOutbox
from services.queue_bodies import VoiceTask
from services.transcriber import Transcriber, TranscriptionError
from services.voice_length import ogg_opus_seconds
from services.wappi_client import VoiceTooLarge, WappiClient, WappiError
from utils.metrics import GatewayMetrics

PREFIX = "[ТРАНСКРИБАЦИЯ] "
NOT_RECOGNISED = "(не удалось распознать голосовое сообщение)"
TOO_LONG = "(голосовое сообщение слишком длинное, не расшифровано)"
TOO_LONG_OUTCOMES = ("too_long", "too_large")
DEFAULT_MAX_VOICE_SECONDS = 300
DEFAULT_MAX_VOICE_BYTES = 10 * 1024 * 1024


@dataclass
class VoiceDeps:
    wappi: WappiClient
    transcriber: Transcriber
    sessions: SessionFactory
    publisher: Publisher
    outbox: MessageLogOutbox
    metrics: GatewayMetrics
    clock: Clock
    max_voice_seconds: float = DEFAULT_MAX_VOICE_SECONDS
    max_voice_bytes: int = DEFAULT_MAX_VOICE_BYTES


async def transcript_of(deps: VoiceDeps, body: VoiceTask, *, last_attempt: bool) -> tuple[str, str]:
    """(text, outcome); transient failures propagate for a later attempt unless this is the last one."""
    if body.length_seconds is not None and body.length_seconds > deps.max_voice_seconds:
        logger.info(
            "Voice {}: {:g} s, longer than {:g} s",
            body.message_id,
            body.length_seconds,
            deps.max_voice_seconds,
        )
        return TOO_LONG, "too_long"
    try:
        media = await deps.wappi.download_voice(
            body.message_id, body.voice_url, max_bytes=deps.max_voice_bytes
        )
    except VoiceTooLarge as exc:
        logger.info("Voice {}: not downloaded, {}", body.message_id, exc)
        return TOO_LONG, "too_large"
    except WappiError as exc:
        if exc.transient and not last_attempt:
            raise
        logger.warning("Voice {}: audio could not be downloaded: {}", body.message_id, exc)
        return NOT_RECOGNISED, "download_failed"
    seconds = body.length_seconds if body.length_seconds is not None else ogg_opus_seconds(media.data)
    if seconds is not None and seconds > deps.max_voice_seconds:
        logger.info("Voice {}: {:g} s, longer than {:g} s", body.message_id, seconds, deps.max_voice_seconds)
        return TOO_LONG, "too_long"
    try:
        text = await deps.transcriber.transcribe(media.data, media.mime_type)
    except TranscriptionError as exc:
        if exc.transient and not last_attempt:
            raise
        logger.warning("Voice {}: not transcribed: {}", body.message_id, exc)
        return NOT_RECOGNISED, "failed"
    if not text:
        return NOT_RECOGNISED, "empty"
    return text, "ok"


def incoming_body(
    body: VoiceTask, text: str, *, by_operator: bool = False, too_long: bool = False
) -> dict[str, Any]:
    """The spec's voice-result body for incoming_messages."""
    result = {
        "message_id": body.message_id,
        "chat_id": body.chat_id,
        "phone_number": body.phone_number,
        "sender_name": body.sender_name,
        "message_text": PREFIX + text,
        "is_voice": True,
        "original_voice_url": body.voice_url,
        "timestamp": body.timestamp,
        "contact_info": body.contact_info.model_dump(exclude_unset=True) if body.contact_info else None,
        "message_type": "voice",
    }
    if by_operator:
        result["sender"] = BY_OPERATOR
    if too_long:
        result["voice_too_long"] = True
    return result


async def handle_voice(body: VoiceTask, delivery: Delivery, *, deps: VoiceDeps) -> None:
    message_id = body.message_id
    async with deps.sessions() as session:
        row = (
            await session.execute(
                select(MessageLog.id, MessageLog.direction, MessageLog.transcribed_at).where(
                    MessageLog.message_id == message_id
                )
            )
        ).one_or_none()
    if row is not None and row.transcribed_at is not None:
        logger.info("Voice {} was already transcribed; not doing it twice", message_id)
        await relay(deps.sessions, deps.publisher, deps.outbox, ids=[row.id])
        return

    text, outcome = await transcript_of(deps, body, last_attempt=delivery.is_last_attempt)
    by_operator = row is not None and row.direction == OPERATOR
    result = incoming_body(body, text, by_operator=by_operator, too_long=outcome in TOO_LONG_OUTCOMES)
    now = deps.clock()
    fields = {
        "message_text": PREFIX + text,
        "payload": result,
        "target_queue": TO_INCOMING,
        "queue_status": PENDING,
        "transcribed_at": now,
        "is_voice": True,
        "error": None if outcome == "ok" else f"not transcribed: {outcome}",
    }
    stmt = insert(MessageLog).values(
        message_id=message_id,
        chat_id=body.chat_id,
        phone_number=body.phone_number,
        direction=INCOMING,
        message_type="voice",
        **fields,
    )
    async with deps.sessions() as session, session.begin():
        # The poller's row of this voice note becomes the outbox row of its transcript.
        row_id = await session.scalar(
            stmt.on_conflict_do_update(
                index_elements=["message_id"], set_=fields, where=MessageLog.transcribed_at.is_(None)
            ).returning(MessageLog.id)
        )
    if row_id is None:
        return  # a concurrent delivery of the same note got there first
    deps.metrics.voice_transcribed.labels(outcome).inc()
    logger.info("Voice {} transcribed ({}), forwarding", message_id, outcome)
    try:
        await relay(deps.sessions, deps.publisher, deps.outbox, ids=[row_id])
    except Exception as exc:
        logger.warning("Publishing the transcript of {} failed, left to the outbox: {}", message_id, exc)
