"""RabbitMQ: the spec's three queues with dead-letter and retry queues, publishing with confirms,
and the one consumer helper that decodes, validates, dead-letters, retries and acks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from jsonschema import Draft202012Validator
from loguru import logger

from config.settings import Settings

# The spec's per-queue arguments (TTL ms, max length); keep them stable, a change fails with 406.
QUEUE_LIMITS = {
    "incoming_messages": (86_400_000, 10_000),
    "outgoing_messages": (3_600_000, 5_000),
    "voice_transcription": (7_200_000, 1_000),
}
RETRY_DELAY_MS = 5_000
# Repo root's contracts/: ../contracts next to the service here, /app/contracts in Docker.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

Handler = Callable[[dict[str, Any]], Awaitable[object]]


@dataclass(frozen=True)
class QueueNames:
    """Real queue names from settings, keyed by the contract (spec) name."""

    incoming_messages: str
    outgoing_messages: str
    voice_transcription: str

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueNames:
        return cls(
            incoming_messages=settings.QUEUE_INCOMING_MESSAGES,
            outgoing_messages=settings.QUEUE_OUTGOING_MESSAGES,
            voice_transcription=settings.QUEUE_VOICE_TRANSCRIPTION,
        )

    def by_contract(self) -> dict[str, str]:
        return {
            "incoming_messages": self.incoming_messages,
            "outgoing_messages": self.outgoing_messages,
            "voice_transcription": self.voice_transcription,
        }


def load_validator(contract: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS_DIR / f"{contract}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


async def declare_topology(channel: AbstractChannel, names: QueueNames) -> None:
    """Declares Q, Q.dlx + Q.dlq and Q.retry for every queue; declaring again is a no-op."""
    for contract, queue in names.by_contract().items():
        ttl, max_length = QUEUE_LIMITS[contract]
        dlx = await channel.declare_exchange(f"{queue}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await channel.declare_queue(f"{queue}.dlq", durable=True)
        await dlq.bind(dlx)
        await channel.declare_queue(
            queue,
            durable=True,
            arguments={"x-message-ttl": ttl, "x-max-length": max_length, "x-dead-letter-exchange": dlx.name},
        )
        await channel.declare_queue(
            f"{queue}.retry",
            durable=True,
            arguments={
                "x-message-ttl": RETRY_DELAY_MS,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
            },
        )


class Broker:
    """One robust connection; a confirming channel for publishing, a channel per consumer."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        names: QueueNames,
        max_attempts: int,
    ):
        self.connection = connection
        self.names = names
        self.max_attempts = max_attempts  # deliveries of a transiently failing message before its DLQ
        self._channel = channel

    @classmethod
    async def connect(cls, url: str, names: QueueNames, *, max_attempts: int) -> Broker:
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, names)
        return cls(connection, channel, names, max_attempts)

    @property
    def is_connected(self) -> bool:
        return not self.connection.is_closed and not self._channel.is_closed

    async def publish(self, queue: str, body: dict[str, Any], *, message_id: str) -> None:
        """Returns once the broker confirmed the persistent message."""
        message = aio_pika.Message(
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
        )
        await self._channel.default_exchange.publish(message, routing_key=queue)

    async def queue_sizes(self) -> dict[str, int | None]:
        """Ready messages per queue (and its DLQ); None for a queue the broker could not report."""
        sizes: dict[str, int | None] = {}
        channel = await self.connection.channel()
        try:
            for queue in self.names.by_contract().values():
                for name in (queue, f"{queue}.dlq"):
                    declared = await channel.declare_queue(name, passive=True)
                    sizes[name] = declared.declaration_result.message_count
        finally:
            await channel.close()
        return sizes

    async def replay_dead_letters(self, contract: str, limit: int) -> tuple[int, int]:
        """Moves up to `limit` messages from the contract's DLQ back to its queue with a fresh retry
        budget; returns (replayed, left in the DLQ)."""
        queue_name = self.names.by_contract()[contract]
        channel = await self.connection.channel(publisher_confirms=True)
        try:
            dlq = await channel.get_queue(f"{queue_name}.dlq", ensure=True)
            replayed = left = 0
            while replayed < limit:
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    left = 0
                    break
                # The broker's own count of what is still behind this message; a passive declare
                # right after the acks can report a stale number.
                left = message.message_count or 0
                # Confirmed publish first, then the ack: a crash in between duplicates, never loses,
                # and the consumer is idempotent on message_id. Unacked ones go back when the channel closes.
                await channel.default_exchange.publish(_replayed(message), routing_key=queue_name)
                await message.ack()
                replayed += 1
        finally:
            await channel.close()
        logger.info("{}: replayed {} dead letters, {} left", queue_name, replayed, left)
        return replayed, left

    async def consume(
        self,
        contract: str,
        handler: Handler,
        *,
        transient: tuple[type[BaseException], ...],
        prefetch: int,
    ) -> ConsumerHandle:
        queue_name = self.names.by_contract()[contract]
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=True)
        dlx = await channel.get_exchange(f"{queue_name}.dlx", ensure=True)
        consumer = _Consumer(
            queue_name, load_validator(contract), handler, transient, channel, dlx, self.max_attempts
        )
        tag = await queue.consume(consumer.on_message, no_ack=False)
        return ConsumerHandle(queue, tag, channel)

    async def close(self) -> None:
        await self.connection.close()


@dataclass
class ConsumerHandle:
    queue: AbstractQueue
    tag: str
    channel: AbstractChannel

    @property
    def running(self) -> bool:
        return not self.channel.is_closed

    async def stop(self) -> None:
        """Stops taking new deliveries; unacked ones go back to the queue when the channel closes."""
        if self.channel.is_closed:
            return
        try:
            await self.queue.cancel(self.tag)
            await self.channel.close()
        except Exception as exc:  # the broker may already be gone at shutdown
            logger.warning("Stopping the {} consumer: {}", self.queue.name, exc)


class _Consumer:
    def __init__(
        self,
        queue: str,
        validator: Draft202012Validator,
        handler: Handler,
        transient: tuple[type[BaseException], ...],
        channel: AbstractChannel,
        dlx: AbstractExchange,
        max_attempts: int,
    ):
        self.queue = queue
        self.validator = validator
        self.handler = handler
        self.transient = transient
        self.channel = channel
        self.dlx = dlx
        self.max_attempts = max_attempts

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # Acks when the block ends; an error while dead-lettering (broker gone) requeues instead.
        async with message.process(requeue=True):
            attempts = _attempts(message)
            body, problem = self._decode(message.body)
            if problem:
                await self._dead_letter(message, problem, attempts)
                return
            try:
                await self.handler(body)
            except self.transient as exc:
                if attempts + 1 >= self.max_attempts:
                    await self._dead_letter(
                        message, f"gave up after {attempts + 1} attempts: {exc}", attempts + 1
                    )
                else:
                    logger.warning("{}: transient error, retry {} in 5 s: {}", self.queue, attempts + 1, exc)
                    await self._retry(message, attempts + 1)
            except Exception as exc:
                logger.exception("{}: permanent error on message {}", self.queue, message.message_id)
                await self._dead_letter(message, f"{type(exc).__name__}: {exc}", attempts + 1)

    def _decode(self, raw: bytes) -> tuple[dict[str, Any], str | None]:
        """The body, or why it is unusable; whatever a sender writes ends here as a reason, never a crash."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            # Bad UTF-8, bad JSON, an integer too long to convert, nesting too deep to parse.
            return {}, f"invalid JSON: {type(exc).__name__}: {exc}"
        try:
            # "\ud800" is valid JSON but not text: nothing downstream (database, logs) could store it.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
            errors = sorted(self.validator.iter_errors(body), key=lambda error: _path(error.absolute_path))
        except UnicodeEncodeError:
            return {}, "invalid JSON: a string holds an unpaired surrogate (\\ud800-\\udfff), not text"
        except RecursionError:
            return {}, "schema violation: the body is nested too deeply to check"
        if errors:
            first = errors[0]
            return {}, f"schema violation at {_path(first.absolute_path)}: {first.message}"
        return body, None

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, attempts: int) -> None:
        # A reason can quote the body: lone surrogates in it would fail the header's UTF-8 encoding.
        reason = reason[:1000].encode("utf-8", "backslashreplace").decode("utf-8")
        logger.error("{}: dead-lettering message {}: {}", self.queue, message.message_id, reason)
        headers = {"x-dlq-reason": reason, "x-attempts": attempts, "x-original-queue": self.queue}
        await self.dlx.publish(_copy(message, headers), routing_key=self.queue)

    async def _retry(self, message: AbstractIncomingMessage, attempts: int) -> None:
        await self.channel.default_exchange.publish(
            _copy(message, {"x-attempts": attempts}), routing_key=f"{self.queue}.retry"
        )


def _path(parts: Iterable[str | int]) -> str:
    return "/".join(str(part) for part in parts) or "(body)"


def _attempts(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-attempts", 0)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    # The broker's own x-death bookkeeping is not ours to copy.
    kept = {key: value for key, value in (message.headers or {}).items() if key != "x-death"}
    return aio_pika.Message(
        body=message.body,
        headers={**kept, **headers},
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type=message.content_type or "application/json",
        message_id=message.message_id,
    )


def _replayed(message: AbstractIncomingMessage) -> aio_pika.Message:
    # Without the dead-letter headers the consumer sees a first delivery: a full retry budget.
    dropped = {"x-attempts", "x-dlq-reason", "x-original-queue", "x-death"}
    headers = {key: value for key, value in (message.headers or {}).items() if key not in dropped}
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type=message.content_type or "application/json",
        message_id=message.message_id,
    )
