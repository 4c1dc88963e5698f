"""Publishing: persistent JSON messages on a confirming channel, each awaited until the broker confirms it
(or the timeout passes, which counts as a failure: the caller keeps the message to publish again)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

PUBLISH_TIMEOUT_S = 15.0


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""

    routing_key: str
    body: dict[str, Any] | bytes
    message_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str = ""  # "" is the default exchange: routing_key is the queue's name
    expiration: float | None = None  # seconds; the retry queue's own TTL applies when None


class Publisher:
    def __init__(self, channel: AbstractChannel, confirm_timeout: float = PUBLISH_TIMEOUT_S):
        self.channel = channel
        self.confirm_timeout = confirm_timeout

    @classmethod
    async def open(
        cls, connection: AbstractRobustConnection, confirm_timeout: float = PUBLISH_TIMEOUT_S
    ) -> Publisher:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel, confirm_timeout)

    @property
    def is_open(self) -> bool:
        return not self.channel.is_closed

    async def publish(self, message: Outgoing) -> None:
        """Returns once the broker confirmed the persistent message."""
        body = message.body if isinstance(message.body, bytes) else encode(message.body)
        amqp = aio_pika.Message(
            body=body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message.message_id,
            headers=message.headers,
            expiration=message.expiration,
        )
        exchange = (
            await self.channel.get_exchange(message.exchange, ensure=False)
            if message.exchange
            else self.channel.default_exchange
        )
        await exchange.publish(amqp, routing_key=message.routing_key, timeout=self.confirm_timeout)

    async def publish_all(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        """Publishes together (started in order on one channel, so they reach a queue in that order);
        per message None when confirmed, else the error."""
        results = await asyncio.gather(*(self.publish(m) for m in messages), return_exceptions=True)
        return [result if isinstance(result, BaseException) else None for result in results]

    async def close(self) -> None:
        await self.channel.close()
