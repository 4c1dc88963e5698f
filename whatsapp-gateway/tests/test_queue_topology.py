"""Queue topology on the real RabbitMQ: nothing expires, overflows or gets rejected into the void."""

import asyncio
import json
import uuid

import aio_pika
import pytest

from config.queue import Contract, Publisher, declare_all, declare_queue_topology, handle_delivery
from tests.conftest import collect


async def _death_reason(broker, dlq: str) -> tuple[dict, str]:
    found = await collect(broker, dlq, expect=1)
    assert found, f"nothing arrived in {dlq}"
    message = found[0]["_amqp"]
    return found[0], message.headers["x-death"][0]["reason"]


@pytest.fixture
async def scratch(broker):
    """A throwaway queue name with its own topology, deleted afterwards."""
    name = f"gw_test_{uuid.uuid4().hex[:8]}"
    yield name
    channel = await broker.channel()
    for queue in (name, f"{name}.dlq", f"{name}.retry"):
        await channel.queue_delete(queue)
    await channel.exchange_delete(f"{name}.dlx")
    await channel.close()


async def test_declaring_the_topology_twice_works(broker, queues):
    channel = await broker.channel()
    await declare_all(channel, queues)
    await declare_all(channel, queues)
    queue = await channel.declare_queue(queues.incoming, passive=True)
    assert queue.declaration_result.message_count == 0
    await channel.close()


async def test_an_expired_message_lands_in_the_dlq_with_reason_expired(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    await publisher.publish(scratch, {"n": 1}, message_id="m1", expiration=0.05)
    body, reason = await _death_reason(broker, f"{scratch}.dlq")
    assert reason == "expired" and body["n"] == 1


async def test_an_overflowing_message_lands_in_the_dlq_with_reason_maxlen(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=1)
    await publisher.publish(scratch, {"n": 1}, message_id="m1")
    await publisher.publish(scratch, {"n": 2}, message_id="m2")
    body, reason = await _death_reason(broker, f"{scratch}.dlq")
    assert reason == "maxlen" and body["n"] == 1  # the oldest is dropped from the head
    assert [b["n"] for b in await collect(broker, scratch, expect=1)] == [2]


async def test_a_rejected_message_lands_in_the_dlq_with_reason_rejected(broker, publisher, scratch):
    channel = await broker.channel()
    queue = await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    await publisher.publish(scratch, {"n": 3}, message_id="m3")
    message = None
    for _ in range(50):
        message = await queue.get(no_ack=False, fail=False)
        if message:
            break
        await asyncio.sleep(0.05)
    await message.reject(requeue=False)
    body, reason = await _death_reason(broker, f"{scratch}.dlq")
    assert reason == "rejected" and body["n"] == 3


async def test_the_retry_queue_returns_messages_to_their_queue(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    await publisher.publish(f"{scratch}.retry", {"n": 4}, message_id="m4")
    found = await collect(broker, scratch, expect=1, wait_s=9)
    assert [b["n"] for b in found] == [4]


async def _deliver_once(broker, queue: str, handler, contract: Contract, publisher: Publisher) -> None:
    channel = await broker.channel()
    target = await channel.get_queue(queue, ensure=False)
    for _ in range(100):
        message = await target.get(no_ack=False, fail=False)
        if message:
            await handle_delivery(
                message, queue=queue, contract=contract, handler=handler, publisher=publisher, max_attempts=5
            )
            return
        await asyncio.sleep(0.05)
    raise AssertionError("nothing to deliver")


async def test_a_transient_failure_goes_to_retry_with_its_attempt_count(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    contract = Contract({"type": "object"})

    async def flaky(body, attempt):
        raise ConnectionResetError("broker hiccup")

    await publisher.publish(scratch, {"n": 5}, message_id="m5")
    await _deliver_once(broker, scratch, flaky, contract, publisher)
    retried = (await collect(broker, f"{scratch}.retry", expect=1))[0]["_amqp"]
    assert retried.headers["x-attempts"] == 1


async def test_after_the_last_attempt_a_message_is_dead_lettered_with_the_reason(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    contract = Contract({"type": "object"})

    async def flaky(body, attempt):
        raise TimeoutError("Wappi did not answer")

    await publisher.publish(scratch, {"n": 6}, message_id="m6", headers={"x-attempts": 4})
    await _deliver_once(broker, scratch, flaky, contract, publisher)
    dead = (await collect(broker, f"{scratch}.dlq", expect=1))[0]["_amqp"]
    assert dead.headers["x-attempts"] == 5
    assert "Wappi did not answer" in dead.headers["x-dlq-reason"]
    assert "after 5 attempts" in dead.headers["x-dlq-reason"]
    assert dead.headers["x-original-queue"] == scratch


async def test_a_body_that_is_not_json_is_dead_lettered_not_crashing_the_consumer(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    called = []

    async def handler(body, attempt):
        called.append(body)

    await publisher.publish(scratch, b"<not json>", message_id="m7")
    await _deliver_once(broker, scratch, handler, Contract({"type": "object"}), publisher)
    dead = await collect_raw(broker, f"{scratch}.dlq")
    assert dead.body == b"<not json>"
    assert dead.headers["x-dlq-reason"].startswith("body is not JSON")
    assert called == []


async def collect_raw(broker, queue: str) -> aio_pika.abc.AbstractIncomingMessage:
    channel = await broker.channel()
    target = await channel.get_queue(queue, ensure=False)
    for _ in range(100):
        message = await target.get(no_ack=True, fail=False)
        if message:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing in {queue}")


@pytest.mark.usefixtures("gateway")
async def test_an_invalid_outgoing_body_is_dead_lettered_with_the_validation_error(
    broker, publisher, queues, sandbox
):
    await publisher.publish(queues.outgoing, {"phone_number": "+7 701", "text": "hi"}, message_id="bad-1")
    found = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert len(found) == 1
    reason = found[0]["_amqp"].headers["x-dlq-reason"]
    assert "does not match the contract" in reason and "message_text" in reason
    assert json.loads(found[0]["_amqp"].body) == {"phone_number": "+7 701", "text": "hi"}
    assert (await sandbox.get("/sandbox/sent")).json()["messages"] == []


async def test_a_channel_closed_while_handling_leaves_the_message_for_redelivery(broker, publisher, scratch):
    channel = await broker.channel()
    await declare_queue_topology(channel, scratch, ttl_ms=60_000, max_length=100)
    await publisher.publish(scratch, {"n": 7}, message_id="m7")
    reader = await broker.channel()
    queue = await reader.get_queue(scratch, ensure=False)
    for _ in range(100):
        if message := await queue.get(no_ack=False, fail=False):
            break
        await asyncio.sleep(0.05)

    async def shutting_down(body, delivery):
        await reader.close()  # as at shutdown or a broker restart, before the ack

    await handle_delivery(
        message,
        queue=scratch,
        contract=Contract({"type": "object"}),
        handler=shutting_down,
        publisher=publisher,
        max_attempts=5,
    )

    assert [b["n"] for b in await collect(broker, scratch, expect=1)] == [7]
