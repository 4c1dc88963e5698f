"""Outages as the platform and the client see them: a Gemini outage is ridden out and shown on /health with
200; a dead worker makes /health 503 so the platform restarts the service."""

import asyncio
import contextlib
import json

import httpx

from app import create_app
from services.gemini_client import GeminiRetries
from tests.conftest import ADMIN_KEY, fixed_clock, incoming

BUSINESS = "ТОО Жарык Трейд"


@contextlib.asynccontextmanager
async def running_app(settings, **overrides):
    app = create_app(
        settings.model_copy(update=overrides),
        clock=fixed_clock(),
        gemini_retries=GeminiRetries(attempts=2, backoff_initial_s=0.05, backoff_max_s=0.1),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as client:
            yield app, client


async def test_a_gemini_outage_longer_than_the_retries_is_answered_later_and_health_stays_200(
    settings, db, queues, sandbox, sandbox_url
):
    # Two failed calls spend the client's retries, the third fails the redelivery's first try: the message
    # goes through the retry queue once and is answered about 5 s later.
    await sandbox.post("/sandbox/faults", json={"endpoint": "gemini", "status": 503, "count": 3})
    async with running_app(settings, GEMINI_BASE_URL=sandbox_url) as (_, client):
        body = incoming("Сколько стоит тариф Старт?", phone="77057001122", business=BUSINESS)
        await queues.publish_incoming(body)
        during = await _health_when(client, lambda h: h["gemini"]["status"] == "unavailable")
        stats = (await client.get("/stats", headers={"X-API-Key": ADMIN_KEY})).json()
        replies = await queues.wait_for(queues.outgoing_queue.name, seconds=15)
        after = (await client.get("/health")).json()

    assert during["status"] == "ok" and during["_code"] == 200
    assert "detail" not in during["gemini"]  # Gemini's words are for the key holder, not the public
    assert stats["gemini"]["status"] == "unavailable" and "503" in stats["gemini"]["detail"]
    assert [json.loads(r.body)["reply_to_message_id"] for r in replies] == [body["message_id"]]
    assert after["gemini"]["status"] == "ok"
    assert (await sandbox.get("/sandbox/stats")).json()["gemini"]["calls"] >= 5
    assert await queues.drain(queues.incoming_queue.dlq) == []


async def test_health_is_503_when_the_outbox_worker_has_died(settings, db, broker, gemini, queues):
    async with running_app(settings) as (app, client):
        assert (await client.get("/health")).status_code == 200
        outbox = app.state.runtime.workers["outbox"]
        outbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outbox
        response = await client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["workers"]["outbox"] == "stopped"
    assert (body["database"], body["broker"], body["consumer"]) == ("ok", "ok", "ok")


async def test_health_is_503_when_the_consumer_has_stopped(settings, db, broker, gemini, queues):
    async with running_app(settings) as (app, client):
        await app.state.runtime.consumer.stop()
        response = await client.get("/health")

    assert response.status_code == 503
    assert (
        response.json()["consumer"] == "stopped (channel closed)"
        and response.json()["workers"]["outbox"] == "ok"
    )


async def _health_when(client: httpx.AsyncClient, condition, seconds: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        response = await client.get("/health")
        body = {**response.json(), "_code": response.status_code}
        if condition(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)
