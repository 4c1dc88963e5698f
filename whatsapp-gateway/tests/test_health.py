"""/health: 200 while what a restart cannot fix is broken (Wappi), 503 when a worker is stalled or dead."""

import asyncio
from datetime import timedelta

import pytest

from service_kit.clock import utc_now
from tests.conftest import running_gateway, wait_first_poll

pytestmark = pytest.mark.usefixtures("clean")
WORKERS = {"poller": "ok", "retention": "ok", "outbox": "ok", "sender": "ok", "voice": "ok", "erasures": "ok"}


async def test_a_wappi_outage_is_reported_with_200_and_all_workers_ok(settings, sessions, sandbox):
    async with running_gateway(settings) as (_, client):
        await wait_first_poll(sessions)
        await sandbox.post("/sandbox/faults", json={"endpoint": "get/status", "status": 503})
        await sandbox.post("/sandbox/faults", json={"endpoint": "chats/get", "status": 503})
        await asyncio.sleep(0.5)  # the poller keeps failing cycles: failing is not stalling
        response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["wappi_connection"] == "error"  # what Wappi said: in the log
    assert body["workers"] == WORKERS


async def test_a_poller_stuck_in_a_cycle_makes_health_503(settings, sessions, sandbox):
    skew = timedelta()
    async with running_gateway(settings, clock=lambda: utc_now() + skew) as (_, client):
        await wait_first_poll(sessions)
        assert (await client.get("/health")).status_code == 200
        # Wappi stops answering at all: the leader's cycle hangs inside a call ...
        await sandbox.post("/sandbox/faults", json={"endpoint": "chats/get", "latency_ms": 3_000})
        await asyncio.sleep(0.5)
        skew = timedelta(seconds=61)  # ... for longer than max(60 s, 10 x POLLING_INTERVAL)
        response = await client.get("/health")
        await sandbox.delete("/sandbox/faults")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["workers"]["poller"].startswith("stalled: no completed round for 6")
    assert body["workers"]["sender"] == body["workers"]["voice"] == "ok"


async def test_a_consumer_that_stopped_makes_health_503(settings, sessions):
    async with running_gateway(settings) as (app, client):
        await wait_first_poll(sessions)
        await app.state.runtime.consumers["sender"].channel.close()  # as when the broker cancels it for good
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["workers"]["sender"] == "stopped (channel closed)"
    assert response.json()["queue_connection"] == "ok"


async def test_a_worker_loop_that_ended_makes_health_503(settings, sessions):
    async with running_gateway(settings) as (app, client):
        await wait_first_poll(sessions)
        outbox = next(t for t in asyncio.all_tasks() if t.get_name() == "outbox")
        outbox.cancel()
        await asyncio.sleep(0.05)
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["workers"]["outbox"] == "stopped"


async def test_a_replica_waiting_for_the_poller_lease_is_idle_not_stalled(settings, sessions):
    skew = timedelta()
    async with running_gateway(settings), running_gateway(settings, clock=lambda: utc_now() + skew) as (_, c):
        await wait_first_poll(sessions)
        await asyncio.sleep(1.2)  # the second replica has tried for the lease and waits
        skew = timedelta(minutes=5)  # however long it waits
        response = await c.get("/health")
    assert response.json()["workers"]["poller"] == "idle"


async def test_health_probes_do_not_hammer_wappi(settings, sessions, sandbox):
    async with running_gateway(settings) as (_, client):
        answers = [(await client.get("/health")).status_code for _ in range(20)]
    stats = (await sandbox.get("/sandbox/stats")).json()["calls"]
    assert answers == [200] * 20
    assert stats.get("get/status") == 1
