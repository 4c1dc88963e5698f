"""What the gateway would see on the broker: reading and publishing the service's queues in tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from service_kit.publisher import Publisher
from service_kit.queues import Queue, Queues


@dataclass(frozen=True)
class BrokerUnderTest:
    """The broker as the tests use it: one connection, the queues of this run, a confirming publisher."""

    connection: AbstractRobustConnection
    queues: Queues
    publisher: Publisher


class QueueReader:
    """Reads what the service published, as the gateway would."""

    def __init__(self, broker: BrokerUnderTest):
        self.connection = broker.connection
        self.queues = broker.queues
        self.incoming_queue: Queue = broker.queues["incoming_messages"]
        self.outgoing_queue: Queue = broker.queues["outgoing_messages"]

    async def purge_all(self) -> None:
        channel = await self.connection.channel()
        for name in self.queues.names():
            await (await channel.get_queue(name)).purge()
        await channel.close()

    async def publish_incoming(self, body: dict[str, Any] | bytes) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(raw, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=self.incoming_queue.name,
        )
        await channel.close()

    async def drain(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        channel = await self.connection.channel()
        declared = await channel.get_queue(queue)
        messages = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        await channel.close()
        return messages

    async def outgoing(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in await self.drain(self.outgoing_queue.name)]

    async def wait_for(self, queue: str, count: int = 1, seconds: float = 10.0) -> list:
        found: list = []
        deadline = asyncio.get_running_loop().time() + seconds
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            found += await self.drain(queue)
            if len(found) < count:
                await asyncio.sleep(0.1)
        return found
