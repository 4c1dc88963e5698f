"""POST /dead-letters/{queue}/replay: parked messages go back to their queue with a fresh retry budget."""

import asyncio
import time

import pytest

from tests.conftest import ADMIN_KEY, sent_by_bot, settled_row

pytestmark = pytest.mark.usefixtures("gateway")
KEY = {"X-API-Key": ADMIN_KEY}
CUSTOMER = "77011234567"


async def _dlq_size(broker, queue: str) -> int:
    channel = await broker.channel()
    try:
        return (await channel.declare_queue(f"{queue}.dlq", passive=True)).declaration_result.message_count
    finally:
        await channel.close()


async def _wait_dlq_size(broker, queue: str, size: int, wait_s: float = 10.0) -> None:
    deadline = time.monotonic() + wait_s
    while await _dlq_size(broker, queue) != size:
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue}.dlq never held {size} messages")
        await asyncio.sleep(0.05)


async def test_a_message_dead_lettered_after_wappi_failed_is_sent_once_replayed(
    gateway, sandbox, publish, queues, broker, sessions
):
    _, client = gateway
    await sandbox.post("/sandbox/faults", json={"endpoint": "message/send", "status": 500})
    # Already at its last attempt: the failure sends it straight to the DLQ.
    await publish(
        queues.outgoing,
        {"phone_number": CUSTOMER, "message_text": "вторая попытка", "outgoing_id": "out-dlq"},
        message_id="out-dlq",
        headers={"x-attempts": 4},
    )
    await _wait_dlq_size(broker, queues.outgoing, 1)
    assert (await settled_row(sessions, "out-dlq")).queue_status == "failed"
    await sandbox.delete("/sandbox/faults")
    # One more failed delivery (the client's own 4 tries): only a fresh retry budget survives it.
    await sandbox.post("/sandbox/faults", json={"endpoint": "message/send", "status": 500, "count": 4})

    response = await client.post("/dead-letters/outgoing_messages/replay", headers=KEY)

    assert response.status_code == 200
    assert response.json() == {"queue": "outgoing_messages", "replayed": 1, "left_in_dlq": 0}
    sent = await sent_by_bot(sandbox, 1, wait_s=10)
    assert [(m["recipient"], m["body"]) for m in sent] == [(CUSTOMER, "вторая попытка")]
    row = await settled_row(sessions, "out-dlq")
    assert (row.queue_status, row.attempts) == ("sent", 3)
    assert await _dlq_size(broker, queues.outgoing) == 0


async def test_replay_needs_the_key(gateway):
    _, client = gateway
    response = await client.post("/dead-letters/outgoing_messages/replay")
    assert response.status_code == 401


async def test_an_unknown_queue_is_404_and_the_limit_is_bounded(gateway):
    _, client = gateway
    for name in ("incoming_messages", "nope"):
        response = await client.post(f"/dead-letters/{name}/replay", headers=KEY)
        assert response.status_code == 404
        assert "outgoing_messages, voice_transcription, contact_erasures" in response.json()["detail"]
    for limit in (0, 1001):
        response = await client.post(f"/dead-letters/voice_transcription/replay?limit={limit}", headers=KEY)
        assert response.status_code == 422
