"""The one consumer helper: decode → check against the contract → typed body → handle → ack; a failure
goes to the retry queue while it is transient and attempts are left, else to the dead-letter queue with
its reason. Whatever a sender writes ends as a reason in the DLQ, never as a crash or a lost message."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import ChannelInvalidStateError
from loguru import logger
from pydantic import BaseModel, ValidationError

from service_kit.errors import InvalidMessage, PermanentError, is_transient
from service_kit.publisher import Outgoing, Publisher
from service_kit.queues import Contract, Queue

BodyT = TypeVar("BodyT", bound=BaseModel)
REASON_LIMIT = 1000


@dataclass(frozen=True)
class Delivery:
    """What a handler knows about a delivery besides its body."""

    # The AMQP message_id, or one given to the message at its first delivery and kept on its retries.
    message_id: str
    attempt: int  # 1 on the first delivery
    max_attempts: int  # after that many the message is dead-lettered

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[BodyT, Delivery], Awaitable[object]]


@dataclass
class Consumer(Generic[BodyT]):
    queue: Queue
    contract: Contract
    model: type[BodyT]
    handler: Handler[BodyT]
    publisher: Publisher
    max_attempts: int
    retry_delay_s: float | None = None  # shorter than the retry queue's own delay, e.g. in tests
    channel: AbstractChannel | None = None
    tag: str | None = None

    @property
    def running(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def start(self, connection: AbstractRobustConnection, prefetch: int) -> None:
        """Consumes on a channel of its own: `prefetch` deliveries are handled at once."""
        self.channel = await connection.channel()
        await self.channel.set_qos(prefetch_count=prefetch)
        declared = await self.channel.get_queue(self.queue.name, ensure=True)
        self.tag = await declared.consume(self.on_message, no_ack=False)

    async def stop(self) -> None:
        """Stops taking deliveries; unacked ones go back to the queue when the channel closes."""
        if self.channel is None or self.channel.is_closed:
            return
        try:
            await self.channel.close()
        except Exception as exc:  # the broker may already be gone at shutdown
            logger.warning("Stopping the {} consumer: {}", self.queue.name, exc)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # Without a message_id there is nothing to deduplicate on: this delivery gets a fresh one.
        delivery = Delivery(
            message.message_id or uuid.uuid4().hex,
            _attempts_so_far(message, self.max_attempts) + 1,
            self.max_attempts,
        )
        try:
            await self.handler(self.decode(message.body), delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            try:
                await self._reroute(message, delivery, exc)
            except Exception:
                # Could not park it elsewhere (broker trouble): let the broker deliver it again.
                logger.exception(
                    "Could not reroute {} from {}; requeueing", delivery.message_id, self.queue.name
                )
                await _settle(message, requeue=True)
                return
        await _settle(message)

    def decode(self, raw: bytes) -> BodyT:
        """The typed body, or InvalidMessage saying why there is none."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            # Bad UTF-8, bad JSON, an integer too long to convert, nesting too deep to parse.
            raise InvalidMessage(f"invalid JSON: {type(exc).__name__}: {exc}") from None
        try:
            # "\ud800" is valid JSON but not text: nothing downstream (database, logs) could store it.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
            errors = self.contract.errors(body)
        except UnicodeEncodeError:
            raise InvalidMessage("invalid JSON: a string holds an unpaired surrogate, not text") from None
        except RecursionError:
            raise InvalidMessage("schema violation: the body is nested too deeply to check") from None
        if errors:
            raise InvalidMessage(f"schema violation at {errors[0]}")
        try:
            return self.model.model_validate(body)
        except ValidationError as exc:
            raise InvalidMessage(f"does not fit {self.model.__name__}: {exc.errors()[0]['msg']}") from None

    async def _reroute(self, message: AbstractIncomingMessage, delivery: Delivery, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, InvalidMessage) else str(exc)
        if is_transient(exc) and not delivery.is_last_attempt:
            logger.warning(
                "{}: attempt {} on {} failed, retrying: {}",
                self.queue.name,
                delivery.attempt,
                delivery.message_id,
                reason,
            )
            expiration = (
                self.retry_delay_s
                if self.retry_delay_s and self.retry_delay_s * 1000 < self.queue.retry_delay_ms
                else None
            )
            await self.publisher.publish(
                Outgoing(
                    self.queue.retry,
                    message.body,
                    message_id=delivery.message_id,
                    headers={**_kept_headers(message), "x-attempts": delivery.attempt},
                    expiration=expiration,
                )
            )
            return
        if not isinstance(exc, PermanentError):
            logger.opt(exception=exc).error("{}: giving up on {}", self.queue.name, delivery.message_id)
        if is_transient(exc):
            reason += f" (after {delivery.attempt} attempts)"
        # A reason can quote the body: lone surrogates in it would fail the header's UTF-8 encoding.
        reason = reason[:REASON_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")
        logger.warning("{}: dead-lettering {}: {}", self.queue.name, delivery.message_id, reason)
        headers = {
            **_kept_headers(message),
            "x-dlq-reason": reason,
            "x-attempts": delivery.attempt,
            "x-original-queue": self.queue.name,
        }
        await self.publisher.publish(
            Outgoing(
                self.queue.name,
                message.body,
                message_id=delivery.message_id,
                headers=headers,
                exchange=self.queue.dlx,
            )
        )


async def start_consumer(
    connection: AbstractRobustConnection,
    queue: Queue,
    contract: Contract,
    *,
    model: type[BodyT],
    handler: Handler[BodyT],
    publisher: Publisher,
    prefetch: int,
    max_attempts: int,
    retry_delay_s: float | None = None,
) -> Consumer[BodyT]:
    consumer = Consumer(queue, contract, model, handler, publisher, max_attempts, retry_delay_s)
    await consumer.start(connection, prefetch)
    return consumer


def _attempts_so_far(message: AbstractIncomingMessage, max_attempts: int) -> int:
    """Our own x-attempts header (RabbitMQ's x-death is not counted on a client's republish)."""
    value = (message.headers or {}).get("x-attempts")
    try:
        return min(max(int(value or 0), 0), max_attempts)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0


def _kept_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    # The broker's own x-death bookkeeping is not ours to copy.
    return {key: value for key, value in (message.headers or {}).items() if key != "x-death"}


async def _settle(message: AbstractIncomingMessage, *, requeue: bool = False) -> None:
    """Acks (or requeues) the delivery: the one place a delivery is settled. On a channel that closed
    meanwhile the broker redelivers it anyway, and handlers are idempotent on message ids."""
    try:
        await (message.nack(requeue=True) if requeue else message.ack())
    except ChannelInvalidStateError:
        logger.warning("Channel closed before {} was settled; it will be redelivered", message.message_id)
