"""POST /dead-letters/incoming_messages/replay: parked messages go back to the queue with a fresh retry
budget. The app runs with its lifespan (consumer included); RabbitMQ and PostgreSQL are real."""

import asyncio
import json

import aio_pika
import httpx
import pytest

from service_kit.queues import queue_sizes
from tests.conftest import ADMIN_KEY, incoming

AUTH = {"X-API-Key": ADMIN_KEY}
GEMINI_DOWN = httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}})
PRICE_QUESTION = "Добрый день! Сколько стоит ваша CRM для отдела продаж на 10 человек?"
REPLAY = "/dead-letters/incoming_messages/replay"


async def dlq_size(queues) -> int:
    return (await queue_sizes(queues.connection, [queues.incoming_queue]))[queues.incoming_queue.dlq]


async def wait_for_dlq(queues, count: int) -> None:
    for _ in range(100):
        if await dlq_size(queues) == count:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the DLQ never held {count} messages")


async def dead_letter_during_outage(queues, settings, gemini, body: dict) -> None:
    """Delivers the body on its last attempt while Gemini is down, so it lands in the DLQ."""
    gemini.moderator = lambda prompt: GEMINI_DOWN
    channel = await queues.connection.channel(publisher_confirms=True)
    await channel.default_exchange.publish(
        aio_pika.Message(
            json.dumps(body).encode(),
            headers={"x-attempts": settings.MAX_DELIVERY_ATTEMPTS - 1},
            message_id=body["message_id"],
        ),
        routing_key=queues.incoming_queue.name,
    )
    await channel.close()
    await wait_for_dlq(queues, 1)


async def test_a_message_parked_during_a_gemini_outage_is_answered_after_replay(
    api, queues, settings, gemini
):
    body = incoming(PRICE_QUESTION, business="ООО Стройком")
    await dead_letter_during_outage(queues, settings, gemini, body)
    gemini.moderator = lambda prompt: {"isClient": True, "confidence": 0.9, "reasoning": "asks for prices"}

    response = await api.post(REPLAY, headers=AUTH)

    assert response.status_code == 200
    assert response.json() == {"queue": "incoming_messages", "replayed": 1, "left_in_dlq": 0}
    replies = await queues.wait_for(queues.outgoing_queue.name)
    assert len(replies) == 1
    assert json.loads(replies[0].body)["reply_to_message_id"] == body["message_id"]
    assert await dlq_size(queues) == 0


async def test_a_replayed_message_gets_a_fresh_retry_budget(api, queues, settings, gemini):
    body = incoming(PRICE_QUESTION)
    await dead_letter_during_outage(queues, settings, gemini, body)

    assert (await api.post(REPLAY, headers=AUTH)).json()["replayed"] == 1

    # Still down: a first failure goes to the retry queue, not straight back to the DLQ.
    retried = await queues.wait_for(queues.incoming_queue.retry)
    assert len(retried) == 1
    assert retried[0].headers["x-attempts"] == 1
    assert "x-dlq-reason" not in retried[0].headers and "x-original-queue" not in retried[0].headers
    assert retried[0].message_id == body["message_id"]
    assert json.loads(retried[0].body) == body


async def test_replay_moves_at_most_limit_messages(api, queues):
    channel = await queues.connection.channel(publisher_confirms=True)
    dlx = await channel.get_exchange(queues.incoming_queue.dlx)
    for n in range(3):
        body = incoming(PRICE_QUESTION, phone=f"7701000000{n}", business="ООО Альфа")
        await dlx.publish(
            aio_pika.Message(json.dumps(body).encode(), headers={"x-attempts": 40, "x-dlq-reason": "test"}),
            routing_key=queues.incoming_queue.name,
        )
    await channel.close()
    await wait_for_dlq(queues, 3)

    response = await api.post(REPLAY, params={"limit": 2}, headers=AUTH)

    assert response.json() == {"queue": "incoming_messages", "replayed": 2, "left_in_dlq": 1}
    assert len(await queues.wait_for(queues.outgoing_queue.name, count=2)) == 2


async def test_replay_needs_the_api_key(api):
    assert (await api.post(REPLAY)).status_code == 401
    assert (await api.post(REPLAY, headers={"X-API-Key": "wrong"})).status_code == 401


async def test_an_unknown_queue_is_404_with_a_message(api):
    response = await api.post("/dead-letters/outgoing_messages/replay", headers=AUTH)

    assert response.status_code == 404
    assert "outgoing_messages" in response.json()["detail"]


@pytest.mark.parametrize("limit", [0, 1001, "many"])
async def test_a_limit_out_of_range_is_422(api, limit):
    assert (await api.post(REPLAY, params={"limit": limit}, headers=AUTH)).status_code == 422
