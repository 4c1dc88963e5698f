"""Wappi misbehaving, through the sandbox's faults: garbage answers, 500s, 429 bursts, slow answers.
Nothing crashes, every message goes out exactly once, and what cannot go out ends in the DLQ with why."""

import asyncio
import io
import time
from collections import Counter

import pytest
from loguru import logger

from service_kit.clock import utc_now
from service_kit.consumer import Delivery
from services.queue_bodies import OutgoingMessage
from services.sender_service import SenderDeps, handle_outgoing
from services.wappi_client import WappiClient, WappiError
from tests.conftest import (
    ADMIN_KEY,
    WAPPI_TOKEN,
    collect,
    inject,
    running_gateway,
    sent_by_bot,
    settled_row,
    wait_faults_used,
    wait_first_poll,
)
from utils.metrics import GatewayMetrics

CUSTOMER = "77011234567"
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
GARBAGE_CHAT_LISTS = [
    (502, HTML_PAGE),
    (None, HTML_PAGE),
    (None, '["dialogs", {"id": 1}]'),
    (None, "null"),
    (None, '{"status": "done", "dialogs": "none today"}'),
    (None, '{"status": "done", "dialogs": [7, {"id": ["x"], "last_time": "soon"}, {"last_time": {}}]}'),
]
GARBAGE_MESSAGE_PAGES = [
    (None, '{"status": "done"}'),
    (None, '{"status": "done", "messages": [{"id": {"a": 1}}, "text", {"id": "Z", "is_me": "perhaps"}]}'),
    (500, HTML_PAGE),
]


async def fault(sandbox, endpoint: str, **spec) -> None:
    (await sandbox.post("/sandbox/faults", json={"endpoint": endpoint, **spec})).raise_for_status()


async def calls(sandbox, endpoint: str) -> int:
    return (await sandbox.get("/sandbox/stats")).json()["calls"].get(endpoint, 0)


@pytest.fixture
def log_lines():
    sink = io.StringIO()
    handler = logger.add(sink, level="WARNING", format="{level} {message}")
    yield sink
    logger.remove(handler)


async def test_the_poller_survives_cycles_of_garbage_and_then_forwards_normally(
    gateway, sessions, sandbox, broker, queues, log_lines
):
    _, client = gateway
    await wait_first_poll(sessions)
    for status, body in GARBAGE_CHAT_LISTS:
        await fault(sandbox, "chats/get", status=status, body=body, count=2)
        await wait_faults_used(sandbox, "chats/get")
    written = await inject(sandbox, phone=CUSTOMER, text="мусор не помеха")
    for status, body in GARBAGE_MESSAGE_PAGES:
        await fault(sandbox, "messages/get", status=status, body=body, count=2)
        await wait_faults_used(sandbox, "messages/get")
    found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=1.0)
    assert [(b["message_id"], b["message_text"]) for b in found] == [(written["id"], "мусор не помеха")]
    health = (await client.get("/health")).json()
    assert health["workers"]["poller"] == "ok" and health["status"] == "healthy"
    logged = log_lines.getvalue()
    assert "Poll cycle failed" in logged and "unexpected answer" in logged
    assert "Skipping chat" in logged and "no readable message" in logged


async def test_a_send_answered_with_garbage_is_retried_then_dead_lettered_with_the_reason(
    gateway, sandbox, publish, queues, broker, sessions
):
    await fault(sandbox, "message/send", body='["not", "an", "answer"]')
    await publish(
        queues.outgoing, {"phone_number": CUSTOMER, "message_text": "мусор", "outgoing_id": "garbage-1"}
    )
    dead = (await collect(broker, f"{queues.outgoing}.dlq", expect=1, wait_s=15))[0]["_amqp"]
    reason = dead.headers["x-dlq-reason"]
    assert dead.headers["x-attempts"] == 5
    assert "Wappi message/send failed (200): unexpected answer" in reason and "after 5 attempts" in reason
    # A 200 that is no answer may hide a sent message: never repeated blindly, the chat is checked first.
    assert await calls(sandbox, "message/send") == 5
    assert await calls(sandbox, "messages/get") >= 4
    assert (await settled_row(sessions, "garbage-1")).queue_status == "uncertain"

    await sandbox.delete("/sandbox/faults")
    await publish(queues.outgoing, {"phone_number": CUSTOMER, "message_text": "дальше"})
    assert [m["body"] for m in await sent_by_bot(sandbox, 1)] == ["дальше"]


async def test_a_message_that_keeps_failing_ends_in_the_dlq_and_the_sender_goes_on_with_the_next(
    gateway, sandbox, publish, queues, broker, sessions
):
    question = await inject(sandbox, phone="77015550001", text="Вопрос")
    await fault(sandbox, "message/send", status=500)  # every plain send fails; replies still work
    await publish(
        queues.outgoing, {"phone_number": CUSTOMER, "message_text": "не дойдёт", "outgoing_id": "doomed"}
    )
    await publish(
        queues.outgoing,
        {
            "phone_number": "77015550001",
            "message_text": "Ответ",
            "reply_to_message_id": question["id"],
            "outgoing_id": "next",
        },
    )
    assert [(m["kind"], m["body"]) for m in await sent_by_bot(sandbox, 1)] == [("reply", "Ответ")]
    dead = (await collect(broker, f"{queues.outgoing}.dlq", expect=1, wait_s=15))[0]
    assert dead["outgoing_id"] == "doomed"
    assert dead["_amqp"].headers["x-attempts"] == 5
    assert dead["_amqp"].headers["x-dlq-reason"] == (
        "WappiError: Wappi message/send failed (500): Injected fault: HTTP 500 (after 5 attempts)"
    )
    row = await settled_row(sessions, "doomed")
    assert (row.queue_status, row.attempts) == ("failed", 5)
    assert await calls(sandbox, "message/send") == 5 * 4  # each delivery: the client's own 4 tries

    await sandbox.delete("/sandbox/faults")
    await publish(queues.outgoing, {"phone_number": CUSTOMER, "message_text": "снова"})
    assert [m["body"] for m in await sent_by_bot(sandbox, 2)][-1] == "снова"


async def test_with_30_percent_500s_and_429_bursts_every_message_is_sent_exactly_once(
    gateway, sandbox, publish, queues, broker
):
    await fault(sandbox, "message/send", status=500, rate=0.3)
    await fault(sandbox, "message/reply", status=429, count=6)
    question = await inject(sandbox, phone=CUSTOMER, text="Вопрос")
    texts = [f"сообщение {n}" for n in range(20)]
    for n, text in enumerate(texts):
        body = {"phone_number": CUSTOMER, "message_text": text, "outgoing_id": f"flaky-{n}"}
        if n % 5 == 0:
            body["reply_to_message_id"] = question["id"]
        await publish(queues.outgoing, body, message_id=body["outgoing_id"])
    sent = await sent_by_bot(sandbox, 20, wait_s=30)
    await asyncio.sleep(1.0)  # nothing more arrives late
    sent = (await sandbox.get("/sandbox/sent")).json()["messages"]
    assert Counter(m["body"] for m in sent) == Counter(texts)
    assert await calls(sandbox, "message/send") > 16  # the faults did happen
    assert await collect(broker, f"{queues.outgoing}.dlq", expect=0, wait_s=0.2) == []


async def test_a_5_s_answer_does_not_lose_or_double_the_message(gateway, sandbox, publish, queues):
    await fault(sandbox, "message/send", latency_ms=5000)
    started = time.monotonic()
    await publish(
        queues.outgoing, {"phone_number": CUSTOMER, "message_text": "медленно", "outgoing_id": "slow-1"}
    )
    sent = await sent_by_bot(sandbox, 1, wait_s=12)
    assert [m["body"] for m in sent] == ["медленно"] and time.monotonic() - started >= 5
    await sandbox.delete("/sandbox/faults")
    assert await calls(sandbox, "message/send") == 1


@pytest.mark.usefixtures("clean")
@pytest.mark.parametrize("went_out", [True, False])
async def test_a_send_whose_answer_never_came_is_checked_before_it_is_sent_again(
    settings, sessions, sandbox, went_out
):
    """The client gives up waiting (its timeout, shortened here): the next attempt looks in the chat
    first, and sends only when the message is not there."""
    wappi = WappiClient(
        base_url=settings.WAPPI_BASE_URL,
        token=WAPPI_TOKEN,
        profile_id=settings.WAPPI_PROFILE_ID,
        metrics=GatewayMetrics(),
        timeout=0.3,
        backoff_initial=0.01,
    )
    deps = SenderDeps(
        wappi=wappi,
        sessions=sessions,
        metrics=GatewayMetrics(),
        clock=utc_now,
        sends_per_minute=settings.MAX_SENDS_PER_MINUTE,
        manager_phones=settings.manager_phones,
    )
    body = OutgoingMessage(phone_number=CUSTOMER, message_text="один раз", outgoing_id=f"lost-{went_out}")
    await fault(sandbox, "message/send", latency_ms=800)
    try:
        with pytest.raises(WappiError) as caught:
            await handle_outgoing(body, Delivery(body.outgoing_id, 1, 5), deps=deps)
        assert caught.value.maybe_done and caught.value.transient
        assert (await settled_row(sessions, body.outgoing_id)).queue_status == "uncertain"
        await sandbox.delete("/sandbox/faults")
        # The sandbox drops a request whose caller hung up; had Wappi sent it, the chat would show it so:
        echo = await inject(sandbox, phone=CUSTOMER, text="один раз", from_me=True) if went_out else None
        await handle_outgoing(body, Delivery(body.outgoing_id, 2, 5), deps=deps)
    finally:
        await wappi.close()
    sent = (await sandbox.get("/sandbox/sent")).json()["messages"]
    assert [m["body"] for m in sent] == ([] if went_out else ["один раз"])
    assert await calls(sandbox, "message/send") == (1 if went_out else 2)
    row = await settled_row(sessions, body.outgoing_id)
    assert (row.queue_status, row.wappi_message_id) == ("sent", echo["id"] if went_out else sent[0]["id"])


@pytest.mark.usefixtures("clean")
async def test_a_manual_message_survives_a_wappi_outage(settings, sandbox):
    async with running_gateway(settings) as (_, client):
        await fault(sandbox, "message/send", status=503, count=6)
        response = await client.post(
            "/test/send-message",
            headers={"X-API-Key": ADMIN_KEY},
            json={"phone_number": CUSTOMER, "message_text": "после сбоя"},
        )
        assert response.status_code == 202
        assert [m["body"] for m in await sent_by_bot(sandbox, 1, wait_s=10)] == ["после сбоя"]
