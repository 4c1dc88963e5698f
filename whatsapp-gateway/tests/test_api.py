"""The HTTP API: /health open, everything else behind X-API-Key; /stats counts what happened."""

import asyncio

import pytest
from loguru import logger

from config.database import create_engine
from service_kit.runtime import session_factory
from tests.conftest import ADMIN_KEY, collect, inject, sent_by_bot, wait_first_poll

KEY = {"X-API-Key": ADMIN_KEY}
CUSTOMER = "77011234567"
PROTECTED = [
    ("GET", "/stats"),
    ("POST", "/test/send-message"),
    ("GET", "/logs/messages"),
    ("GET", "/metrics"),
]


async def test_health_answers_200_with_the_spec_body(gateway, sessions):
    _, client = gateway
    await wait_first_poll(sessions)
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["wappi_connection"] == "ok" and body["queue_connection"] == "ok"
    assert body["last_poll_time"].endswith("+05:00")


async def test_a_wappi_outage_shows_in_the_health_body_with_200_and_wappis_words_only_in_the_log(
    gateway, sandbox
):
    _, client = gateway
    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(str(message)), level="WARNING")
    await sandbox.post("/sandbox/faults", json={"endpoint": "get/status", "status": 503})
    response = await client.get("/health")
    logger.remove(sink)
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["wappi_connection"] == "error" and "503" not in response.text
    assert any("Wappi get/status failed (503)" in line for line in logged)


async def test_health_is_503_when_the_database_is_unreachable(gateway):
    app, client = gateway
    runtime = app.state.runtime
    working = runtime.sessions
    unreachable = create_engine("postgresql://postgres@127.0.0.1:1/whatsapp_gateway")
    runtime.sessions = session_factory(unreachable)  # as if the database went away
    try:
        response = await client.get("/health")
    finally:
        runtime.sessions = working
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["database_connection"] == "error"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}])
async def test_admin_endpoints_need_the_right_key(gateway, method, path, headers):
    _, client = gateway
    response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json()["detail"] == "Missing or invalid X-API-Key header"


async def test_a_manual_message_is_validated_queued_and_sent(gateway, sandbox):
    _, client = gateway
    response = await client.post(
        "/test/send-message", headers=KEY, json={"phone_number": CUSTOMER, "message_text": "Тест"}
    )
    assert response.status_code == 202
    outgoing_id = response.json()["outgoing_id"]
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["recipient"], m["body"]) for m in sent] == [(CUSTOMER, "Тест")]
    logs = (await client.get("/logs/messages", headers=KEY, params={"direction": "outgoing"})).json()
    assert [(m["outgoing_id"], m["sent_by"], m["queue_status"]) for m in logs["messages"]] == [
        (outgoing_id, "manual", "sent")
    ]


async def test_a_manual_message_to_a_whitelisted_number_is_refused(gateway, broker, queues):
    _, client = gateway
    response = await client.post(
        "/test/send-message", headers=KEY, json={"phone_number": "77088098009", "message_text": "Тест"}
    )
    assert response.status_code == 403
    assert "whitelisted" in response.json()["detail"]


async def test_an_invalid_manual_message_is_a_422_naming_the_problem(gateway):
    _, client = gateway
    response = await client.post("/test/send-message", headers=KEY, json={"phone_number": "+7 (701) 123"})
    assert response.status_code == 422
    detail = " ".join(response.json()["detail"])
    assert "message_text" in detail and "phone_number" in detail


async def test_stats_count_what_happened_today(gateway_at_midday, sessions, sandbox, broker, queues):
    _, client = gateway_at_midday
    await wait_first_poll(sessions)
    await inject(sandbox, phone=CUSTOMER, text="раз")
    await inject(sandbox, phone="77015550001", text="два")
    await inject(sandbox, phone="77015550002", type="ptt", transcript="голос")
    await client.post(
        "/test/send-message", headers=KEY, json={"phone_number": CUSTOMER, "message_text": "ответ"}
    )
    # three customer messages reach incoming (the voice one as its transcript)
    assert len(await collect(broker, queues.incoming, expect=3, wait_s=10)) == 3
    for _ in range(100):
        stats = (await client.get("/stats", headers=KEY)).json()
        if stats["messages_sent_today"] == 1:
            break
        await asyncio.sleep(0.05)
    assert stats == {
        "messages_received_today": 3,
        "messages_sent_today": 1,
        "voice_transcribed_today": 1,
        "skipped_today": {
            "status_broadcast": 0,
            "broadcast": 0,
            "channel": 0,
            "group": 0,
            "not_a_person": 0,
            "hidden_number": 0,
            "whitelisted": 0,
            "reaction": 0,
        },
        "queue_size": {"incoming": 0, "outgoing": 0, "voice": 0},
        "send_queue": {"waiting": 0, "oldest_wait_s": 0.0},
    }
    metrics = (await client.get("/metrics", headers=KEY)).text
    assert 'gateway_messages_received_total{message_type="text"} 2.0' in metrics
    assert 'gateway_messages_sent_total{kind="send"} 1.0' in metrics
    assert 'gateway_voice_transcribed_total{outcome="ok"} 1.0' in metrics
    assert 'gateway_queue_size{queue="incoming"} 0.0' in metrics
    assert "gateway_sends_waiting 0.0" in metrics
    assert "gateway_wappi_request_seconds_bucket" in metrics


async def test_message_logs_filter_by_phone_and_direction_and_bound_the_limit(
    gateway, sessions, sandbox, broker, queues
):
    _, client = gateway
    await wait_first_poll(sessions)
    await inject(sandbox, phone=CUSTOMER, text="раз")
    await inject(sandbox, phone="77015550001", text="два")
    await collect(broker, queues.incoming, expect=2)
    only = (await client.get("/logs/messages", headers=KEY, params={"phone": "+7 701 123 45 67"})).json()
    assert [(m["phone_number"], m["message_text"]) for m in only["messages"]] == [(CUSTOMER, "раз")]
    incoming = (
        await client.get("/logs/messages", headers=KEY, params={"direction": "incoming", "limit": 1})
    ).json()
    assert incoming["count"] == 1 and incoming["messages"][0]["message_text"] == "два"
    assert (await client.get("/logs/messages", headers=KEY, params={"limit": 0})).status_code == 422
    assert (await client.get("/logs/messages", headers=KEY, params={"limit": 1001})).status_code == 422
