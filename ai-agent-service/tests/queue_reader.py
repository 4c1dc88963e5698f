"""What the gateway would see on the broker: reading and publishing the service's queues in tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika

from config.queue import Broker


class QueueReader:
    """Reads what the service published, as the gateway would."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.names = broker.names

    async def purge_all(self) -> None:
        channel = await self.broker.connection.channel()
        for queue in self.names.by_contract().values():
            for name in (queue, f"{queue}.dlq", f"{queue}.retry"):
                await (await channel.get_queue(name)).purge()
        await channel.close()

    async def publish_incoming(self, body: dict[str, Any] | bytes) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        channel = await self.broker.connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(raw, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=self.names.incoming_messages,
        )
        await channel.close()

    async def drain(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        channel = await self.broker.connection.channel()
        declared = await channel.get_queue(queue)
        messages = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        await channel.close()
        return messages

    async def outgoing(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in await self.drain(self.names.outgoing_messages)]

    async def wait_for(self, queue: str, count: int = 1, seconds: float = 10.0) -> list:
        found: list = []
        deadline = asyncio.get_running_loop().time() + seconds
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            found += await self.drain(queue)
            if len(found) < count:
                await asyncio.sleep(0.1)
        return found
