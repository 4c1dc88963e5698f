"""RabbitMQ: the queue topology, confirmed publishing and the one consumer helper.

Per queue Q: the spec's durable Q (+ dead-lettering to Q.dlx), fanout exchange Q.dlx -> Q.dlq,
and Q.retry whose messages return to Q after RETRY_DELAY_MS (or the shorter expiration they carry).
"""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from jsonschema import Draft202012Validator, FormatChecker
from loguru import logger
from sqlalchemy.exc import DBAPIError

from config.settings import RETRY_QUEUE_TTL_S, Settings

RETRY_DELAY_MS = int(RETRY_QUEUE_TTL_S * 1000)
PUBLISH_TIMEOUT_S = 15
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

# (x-message-ttl ms, x-max-length) from the spec, per logical queue
QUEUE_LIMITS = {
    "incoming": (86_400_000, 10_000),
    "outgoing": (3_600_000, 5_000),
    "voice": (7_200_000, 1_000),
}
CONTRACT_FILES = {
    "incoming": "incoming_messages.schema.json",
    "outgoing": "outgoing_messages.schema.json",
    "voice": "voice_transcription.schema.json",
}


@dataclass(frozen=True)
class QueueNames:
    incoming: str
    outgoing: str
    voice: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "QueueNames":
        return cls(
            incoming=settings.QUEUE_INCOMING_MESSAGES,
            outgoing=settings.QUEUE_OUTGOING_MESSAGES,
            voice=settings.QUEUE_VOICE_TRANSCRIPTION,
        )

    def name(self, role: str) -> str:
        return getattr(self, role)


class InvalidMessage(Exception):
    """A body that does not decode or does not match its contract: it goes to the DLQ as is."""


class PermanentError(Exception):
    """Retrying cannot help (refused recipient, rejected request): dead-letter with this reason."""


class TransientError(Exception):
    """Worth another attempt later through the retry queue."""


class Contract:
    """A contracts/<queue>.schema.json validator (Draft 2020-12 with formats)."""

    def __init__(self, schema: dict[str, Any]):
        self._validator = Draft202012Validator(schema, format_checker=FormatChecker())

    @classmethod
    def load(cls, role: str) -> "Contract":
        return cls(json.loads((CONTRACTS_DIR / CONTRACT_FILES[role]).read_text(encoding="utf-8")))

    def errors(self, body: Any) -> list[str]:
        found = sorted(self._validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in found]

    def check(self, body: Any) -> None:
        errors = self.errors(body)
        if errors:
            raise InvalidMessage("does not match the contract: " + "; ".join(errors)[:900])


async def connect(url: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(url)


async def declare_queue_topology(
    channel: AbstractChannel, name: str, *, ttl_ms: int, max_length: int
) -> AbstractQueue:
    """Declare Q, Q.dlx, Q.dlq and Q.retry; idempotent as long as the arguments stay the same."""
    dlx = await channel.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
    dlq = await channel.declare_queue(f"{name}.dlq", durable=True)
    await dlq.bind(dlx, routing_key="")
    await channel.declare_queue(
        f"{name}.retry",
        durable=True,
        arguments={
            "x-message-ttl": RETRY_DELAY_MS,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": name,
        },
    )
    return await channel.declare_queue(
        name,
        durable=True,
        arguments={"x-message-ttl": ttl_ms, "x-max-length": max_length, "x-dead-letter-exchange": dlx.name},
    )


async def declare_all(channel: AbstractChannel, names: QueueNames) -> None:
    for role, (ttl_ms, max_length) in QUEUE_LIMITS.items():
        await declare_queue_topology(channel, names.name(role), ttl_ms=ttl_ms, max_length=max_length)


async def queue_sizes(connection: AbstractRobustConnection, names: QueueNames) -> dict[str, int]:
    """Ready-message counts by passive declare (a throwaway channel: a missing queue closes it)."""
    channel = await connection.channel()
    try:
        sizes = {}
        for role in QUEUE_LIMITS:
            queue = await channel.declare_queue(names.name(role), passive=True)
            sizes[role] = queue.declaration_result.message_count or 0
        return sizes
    finally:
        await channel.close()


# Headers of a finished delivery history: a replayed message starts with a fresh retry budget.
SPENT_HEADERS = {"x-attempts", "x-dlq-reason", "x-original-queue", "x-death"}


async def replay_dead_letters(
    connection: AbstractRobustConnection, queue: str, limit: int
) -> tuple[int, int]:
    """Move up to `limit` messages from Q.dlq back to Q; returns (moved, left in Q.dlq).

    Each is published with confirms before its DLQ copy is acked: a crash in between leaves it in both
    (the consumers are idempotent on message ids), never in neither."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        dlq = await channel.get_queue(f"{queue}.dlq", ensure=False)
        moved = 0
        while moved < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {
                key: value
                for key, value in (message.headers or {}).items()
                if key not in SPENT_HEADERS and not key.startswith(("x-first-death", "x-last-death"))
            }
            replayed = aio_pika.Message(
                body=message.body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type=message.content_type or "application/json",
                message_id=message.message_id,
                headers=headers,
            )
            # A failed publish leaves the message unacked: closing the channel returns it to the DLQ.
            await channel.default_exchange.publish(replayed, routing_key=queue, timeout=PUBLISH_TIMEOUT_S)
            await message.ack()
            moved += 1
        left = await channel.declare_queue(f"{queue}.dlq", passive=True)
        return moved, left.declaration_result.message_count or 0
    finally:
        await channel.close()


class Publisher:
    """Persistent JSON messages, each awaited until the broker confirms it."""

    def __init__(self, channel: AbstractChannel):
        self._channel = channel

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> "Publisher":
        return cls(await connection.channel(publisher_confirms=True, on_return_raises=True))

    async def publish(
        self,
        queue: str,
        body: dict[str, Any] | bytes,
        *,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        exchange: str = "",
        expiration: float | None = None,
    ) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        message = aio_pika.Message(
            body=payload,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
            headers=headers or {},
            expiration=expiration,
        )
        target = (
            await self._channel.get_exchange(exchange, ensure=False)
            if exchange
            else self._channel.default_exchange
        )
        await target.publish(message, routing_key=queue, timeout=PUBLISH_TIMEOUT_S)

    async def close(self) -> None:
        await self._channel.close()


@dataclass(frozen=True)
class Delivery:
    """What a handler knows about a delivery besides its body."""

    # The AMQP message_id, or one given to the message at its first delivery and kept on its retries.
    message_id: str
    attempt: int  # 1 on the first delivery
    max_attempts: int  # the settings' MAX_DELIVERY_ATTEMPTS: after that many the message is dead-lettered

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[dict[str, Any], Delivery], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PermanentError | InvalidMessage):
        return False
    if isinstance(exc, TransientError):
        return True
    flagged = getattr(exc, "transient", None)
    if isinstance(flagged, bool):
        return flagged
    # Any driver error: a database restart surfaces as several kinds (closed mid-operation, bad protocol
    # state); a real bug is still dead-lettered once MAX_DELIVERY_ATTEMPTS run out.
    return isinstance(exc, OSError | TimeoutError | DBAPIError | AMQPError)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def attempts_so_far(message: AbstractIncomingMessage, max_attempts: int) -> int:
    """Our own x-attempts header; anything unreadable there counts as no attempt yet."""
    value = (message.headers or {}).get("x-attempts")
    try:
        return min(max(int(value or 0), 0), max_attempts)
    except (TypeError, ValueError, OverflowError):
        return 0


def decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidMessage("body is not JSON we accept: nested too deep") from exc


async def _dead_letter(
    publisher: Publisher, queue: str, message: AbstractIncomingMessage, delivery: Delivery, reason: str
) -> None:
    logger.warning("Dead-lettering message {} from {}: {}", delivery.message_id, queue, reason)
    headers = {"x-dlq-reason": reason, "x-attempts": delivery.attempt, "x-original-queue": queue}
    await publisher.publish(
        queue, message.body, message_id=delivery.message_id, headers=headers, exchange=f"{queue}.dlx"
    )


async def handle_delivery(
    message: AbstractIncomingMessage,
    *,
    queue: str,
    contract: Contract,
    handler: Handler,
    publisher: Publisher,
    max_attempts: int,
    retry_delay: float = RETRY_QUEUE_TTL_S,
) -> None:
    """Decode, validate, run the handler, then ack; failures go to Q.retry or Q.dlx, never back to Q."""
    # Without a message_id there is nothing to deduplicate on: this delivery gets a fresh one.
    delivery = Delivery(
        message.message_id or uuid.uuid4().hex, attempts_so_far(message, max_attempts) + 1, max_attempts
    )
    attempt = delivery.attempt
    try:
        body = decode(message.body)
        contract.check(body)
        await handler(body, delivery)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        try:
            if is_transient(exc) and not delivery.is_last_attempt:
                logger.warning(
                    "Attempt {} of {} on {} failed, retrying: {}",
                    attempt,
                    queue,
                    delivery.message_id,
                    _reason(exc),
                )
                # The queue's TTL is the longest wait; a shorter retry delay rides on the message.
                await publisher.publish(
                    f"{queue}.retry",
                    message.body,
                    message_id=delivery.message_id,
                    headers={"x-attempts": attempt},
                    expiration=retry_delay if retry_delay < RETRY_QUEUE_TTL_S else None,
                )
            else:
                if not isinstance(exc, InvalidMessage | PermanentError):
                    logger.opt(exception=exc).error("Giving up on {} from {}", delivery.message_id, queue)
                suffix = f" (after {attempt} attempts)" if is_transient(exc) else ""
                reason = str(exc) if isinstance(exc, InvalidMessage) else _reason(exc)
                await _dead_letter(publisher, queue, message, delivery, reason + suffix)
        except Exception:
            # Could not park it elsewhere (broker trouble): let the broker deliver it again.
            logger.exception("Could not reroute message {} from {}; requeueing", delivery.message_id, queue)
            await _settle(message, requeue=True)
            return
    await _settle(message)


async def _settle(message: AbstractIncomingMessage, *, requeue: bool = False) -> None:
    """Acks (or requeues) the delivery; on a channel that closed meanwhile the broker redelivers it anyway."""
    try:
        await (message.nack(requeue=True) if requeue else message.ack())
    except ChannelInvalidStateError:
        # Shutdown or a broker restart while the handler ran; handlers are idempotent on message ids.
        logger.warning("Channel closed before {} was settled; it will be redelivered", message.message_id)


async def start_consumer(
    connection: AbstractRobustConnection,
    queue: str,
    *,
    contract: Contract,
    handler: Handler,
    publisher: Publisher,
    prefetch: int,
    max_attempts: int,
    retry_delay: float = RETRY_QUEUE_TTL_S,
) -> AbstractChannel:
    """Consume Q on its own channel; close the returned channel to stop."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    declared = await channel.get_queue(queue, ensure=True)

    async def on_message(message: AbstractIncomingMessage) -> None:
        await handle_delivery(
            message,
            queue=queue,
            contract=contract,
            handler=handler,
            publisher=publisher,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
        )

    await declared.consume(on_message, no_ack=False)
    return channel
