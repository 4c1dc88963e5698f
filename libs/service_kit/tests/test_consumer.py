"""A delivery is handled once and acked; a transient failure comes back through the retry queue until the
attempts run out; junk and permanent failures go to the DLQ with a reason; replay gives a fresh budget."""

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from service_kit.api import api_key_dependency
from service_kit.consumer import Delivery, start_consumer
from service_kit.dead_letters import dead_letters_router, peek_dead_letters, replay_dead_letters
from service_kit.errors import PermanentError, TransientError
from service_kit.publisher import Outgoing
from tests.conftest import take_all

OUTGOING = {"phone_number": "77011234567", "message_text": "Здравствуйте!", "outgoing_id": "o-1"}


class OutgoingBody(BaseModel):
    phone_number: str
    message_text: str
    outgoing_id: str | None = None


async def consume(connection, queues, publisher, handler, max_attempts=3):
    queue = queues["outgoing_messages"]
    return await start_consumer(
        connection,
        queue,
        queues.contracts["outgoing_messages"],
        model=OutgoingBody,
        handler=handler,
        publisher=publisher,
        prefetch=4,
        max_attempts=max_attempts,
        retry_delay_s=0.2,
    )


async def wait_until(predicate, seconds=10.0):
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_a_valid_body_reaches_the_handler_typed_and_is_acked(connection, empty_queues, publisher):
    seen: list[tuple[OutgoingBody, Delivery]] = []

    async def handler(body: OutgoingBody, delivery: Delivery) -> None:
        seen.append((body, delivery))

    consumer = await consume(connection, empty_queues, publisher, handler)
    await publisher.publish(Outgoing(empty_queues["outgoing_messages"].name, OUTGOING, message_id="m-1"))
    await wait_until(lambda: seen)
    await consumer.stop()

    body, delivery = seen[0]
    assert body == OutgoingBody(**OUTGOING) and (delivery.message_id, delivery.attempt) == ("m-1", 1)
    assert await take_all(connection, empty_queues["outgoing_messages"].name) == []


async def test_a_transient_failure_is_retried_then_dead_lettered_with_its_attempts(
    connection, empty_queues, publisher
):
    attempts: list[int] = []

    async def handler(body: OutgoingBody, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise TransientError("Wappi is down")

    consumer = await consume(connection, empty_queues, publisher, handler, max_attempts=3)
    await publisher.publish(Outgoing(empty_queues["outgoing_messages"].name, OUTGOING, message_id="m-2"))
    await wait_until(lambda: len(attempts) == 3)
    await asyncio.sleep(0.3)
    await consumer.stop()

    assert attempts == [1, 2, 3]
    [parked] = await take_all(connection, empty_queues["outgoing_messages"].dlq)
    assert parked.headers["x-attempts"] == 3
    assert parked.headers["x-dlq-reason"] == "TransientError: Wappi is down (after 3 attempts)"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not utf-8", "invalid JSON: UnicodeDecodeError"),
        (b'{"phone_number": "7701"', "invalid JSON: JSONDecodeError"),
        (json.dumps({"phone_number": "\ud800", "message_text": "x"}).encode(), "unpaired surrogate"),
        (
            json.dumps({"message_text": "x"}).encode(),
            "schema violation at (body): 'phone_number' is a required",
        ),
        (json.dumps({**OUTGOING, "mark_as_read": "yes"}).encode(), "schema violation at mark_as_read"),
    ],
)
async def test_junk_is_dead_lettered_with_the_reason_and_never_reaches_the_handler(
    connection, empty_queues, publisher, raw, reason
):
    handled: list[object] = []

    async def handler(body, delivery) -> None:
        handled.append(body)

    consumer = await consume(connection, empty_queues, publisher, handler)
    await publisher.publish(Outgoing(empty_queues["outgoing_messages"].name, raw, message_id="junk"))
    for _ in range(100):
        parked = await take_all(connection, empty_queues["outgoing_messages"].dlq)
        if parked:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()

    assert handled == []
    assert reason in parked[0].headers["x-dlq-reason"] and parked[0].body == raw


async def test_a_permanent_failure_is_dead_lettered_at_once_readable_and_replay_gives_a_fresh_budget(
    connection, empty_queues, publisher
):
    refuse = True
    attempts: list[int] = []

    async def handler(body: OutgoingBody, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if refuse:
            raise PermanentError("recipient is whitelisted")

    consumer = await consume(connection, empty_queues, publisher, handler)
    queue = empty_queues["outgoing_messages"]
    await publisher.publish(Outgoing(queue.name, OUTGOING, message_id="m-3"))
    await wait_until(lambda: attempts == [1])
    await asyncio.sleep(0.3)
    refuse = False

    [parked] = await peek_dead_letters(connection, queue, limit=10)
    assert (parked.message_id, parked.reason) == ("m-3", "PermanentError: recipient is whitelisted")
    assert json.loads(parked.body) == OUTGOING
    assert len(await peek_dead_letters(connection, queue, limit=10)) == 1  # reading leaves it parked
    assert await replay_dead_letters(connection, queue, limit=10) == (1, 0)
    await wait_until(lambda: len(attempts) == 2)
    await consumer.stop()
    assert attempts == [1, 1]  # the replayed delivery starts over


async def test_the_replay_route_moves_a_consumed_queues_dead_letters_and_knows_no_other(
    connection, empty_queues, publisher
):
    queue = empty_queues["outgoing_messages"]
    await publisher.publish(Outgoing(queue.name, OUTGOING, message_id="m-4", exchange=queue.dlx))
    app = FastAPI()
    key = api_key_dependency(lambda request: "k" * 16)
    app.include_router(dead_letters_router(lambda: {"outgoing_messages": queue}, lambda: connection, key))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://kit", headers={"X-API-Key": "k" * 16}
    ) as api:
        replayed = await api.post("/dead-letters/outgoing_messages/replay")
        unknown = await api.post("/dead-letters/incoming_messages/replay")

    assert replayed.json() == {"queue": "outgoing_messages", "replayed": 1, "left_in_dlq": 0}
    assert unknown.status_code == 404 and "known: outgoing_messages" in unknown.json()["detail"]
    assert [m.message_id for m in await take_all(connection, queue.name)] == ["m-4"]
