"""The topology on the real RabbitMQ: nothing expires, overflows or gets rejected into the void, the retry
queue hands messages back, and a delivery whose channel closes before its ack is delivered again."""

import asyncio
import uuid

import pytest
from pydantic import BaseModel, ConfigDict

from service_kit.consumer import Consumer
from service_kit.publisher import Outgoing
from service_kit.queues import Contract, Queue, declare_topology
from tests.conftest import take_all


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


async def take_one(connection, queue_name: str, seconds: float = 10.0):
    for _ in range(int(seconds / 0.05)):
        taken = await take_all(connection, queue_name)
        if taken:
            return taken[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived in {queue_name}")


@pytest.fixture
async def scratch(connection):
    """A queue of its own with small limits (one message, a one-second retry delay), deleted afterwards."""
    name = f"kit_scratch_{uuid.uuid4().hex[:8]}"
    queue = Queue("scratch", name, message_ttl_ms=60_000, max_length=1, retry_delay_ms=1000)
    channel = await connection.channel()
    await declare_topology(channel, [queue])
    yield queue
    for declared in (queue.name, queue.dlq, queue.retry):
        await channel.queue_delete(declared)
    await channel.exchange_delete(queue.dlx)
    await channel.close()


async def test_declaring_the_topology_again_is_a_no_op(connection, scratch):
    channel = await connection.channel()
    await declare_topology(channel, [scratch])
    assert (await channel.declare_queue(scratch.name, passive=True)).declaration_result.message_count == 0
    await channel.close()


async def test_an_expired_message_lands_in_the_dlq_with_reason_expired(connection, publisher, scratch):
    await publisher.publish(Outgoing(scratch.name, {"n": 1}, message_id="m1", expiration=0.05))
    dead = await take_one(connection, scratch.dlq)
    assert dead.headers["x-death"][0]["reason"] == "expired" and dead.body == b'{"n": 1}'


async def test_an_overflowing_message_lands_in_the_dlq_with_reason_maxlen(connection, publisher, scratch):
    await publisher.publish(Outgoing(scratch.name, {"n": 1}, message_id="m1"))
    await publisher.publish(Outgoing(scratch.name, {"n": 2}, message_id="m2"))
    dead = await take_one(connection, scratch.dlq)
    assert dead.headers["x-death"][0]["reason"] == "maxlen" and dead.body == b'{"n": 1}'  # the oldest goes
    assert [m.body for m in await take_all(connection, scratch.name)] == [b'{"n": 2}']


async def test_a_rejected_message_lands_in_the_dlq_with_reason_rejected(connection, publisher, scratch):
    await publisher.publish(Outgoing(scratch.name, {"n": 3}, message_id="m3"))
    channel = await connection.channel()
    queue = await channel.get_queue(scratch.name, ensure=False)
    message = await queue.get(no_ack=False, fail=False, timeout=5)
    await message.reject(requeue=False)
    dead = await take_one(connection, scratch.dlq)
    assert dead.headers["x-death"][0]["reason"] == "rejected" and dead.body == b'{"n": 3}'
    await channel.close()


async def test_the_retry_queue_returns_messages_to_their_queue(connection, publisher, scratch):
    await publisher.publish(Outgoing(scratch.retry, {"n": 4}, message_id="m4"))
    assert (await take_one(connection, scratch.name)).body == b'{"n": 4}'


async def test_a_channel_closed_while_handling_leaves_the_message_for_redelivery(
    connection, publisher, scratch
):
    await publisher.publish(Outgoing(scratch.name, {"n": 5}, message_id="m5"))
    reader = await connection.channel()
    message = await (await reader.get_queue(scratch.name, ensure=False)).get(no_ack=False, timeout=5)

    async def shutting_down(body, delivery) -> None:
        await reader.close()  # as at shutdown or a broker restart, before the ack

    consumer = Consumer(scratch, Contract({"type": "object"}), Anything, shutting_down, publisher, 5)
    await consumer.on_message(message)

    assert (await take_one(connection, scratch.name)).body == b'{"n": 5}'
