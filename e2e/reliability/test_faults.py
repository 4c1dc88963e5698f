"""Several hundred customers write while processes are killed, the broker and the database restart and
Wappi and Gemini misbehave: every customer is answered exactly once, and nothing is lost."""

import asyncio
import json
import random
import subprocess
import time
from pathlib import Path

import aio_pika
import httpx
from ledger import tally

from system import ADMIN_KEY, RABBITMQ_URL

PG_VERSION = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
QUESTION = "Здравствуйте! Сколько стоит тариф Старт для нашей компании?"
settle_seconds = 3  # after the last expected reply, time for a duplicate to surface


async def get(url: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url, **kwargs)


async def write_customers(customer, scenario: int, count: int, per_second: float) -> dict[str, str]:
    written = {}
    for i in range(count):
        phone = f"7706{scenario}{i:06d}"
        message = await customer.write(
            phone, QUESTION, sender_name=f"Клиент {i}", business_name=f"ТОО Заказчик {i}"
        )
        written[phone] = message["id"]
        await asyncio.sleep(1 / per_second)
    return written


async def wait_answered(customer, written: dict[str, str], seconds: float) -> list[dict]:
    wanted = set(written.values())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = (await customer.http.get("/sandbox/sent")).json()["messages"]
        if wanted <= {m["reply_to"] for m in sent}:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(settle_seconds)
    return (await customer.http.get("/sandbox/sent")).json()["messages"]


async def dead_lettered(system) -> int:
    return sum((await dead_letters(system)).values())


async def dead_letters(system) -> dict[str, int]:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        counts = {}
        for name in system.queues.values():
            queue = await channel.declare_queue(f"{name}.dlq", passive=True)
            counts[name] = queue.declaration_result.message_count
        return counts


async def run(
    system, customer, name: str, scenario: int, count: int, per_second: float, disrupt, *, junk: int = 0
) -> None:
    """`junk`: how many unusable messages `disrupt` puts on the queues; each must be dead-lettered."""
    dlq_before = await dead_lettered(system)
    writing = asyncio.create_task(write_customers(customer, scenario, count, per_second))
    await disrupt()
    written = await writing
    sent = await wait_answered(customer, written, seconds=180)
    row = tally(name, written, sent, await dead_lettered(system) - dlq_before)
    doubled = [
        m for m in sent if m["recipient"] in written and sum(x["reply_to"] == m["reply_to"] for x in sent) > 1
    ]
    assert (row.lost, row.duplicates, row.in_dlq) == (0, 0, junk), (row, doubled)


async def test_kill_9_of_gateway_then_agent_mid_run(system, customer):
    async def kill_and_restart():
        for service in (system.gateway, system.agent):
            await asyncio.sleep(random.uniform(3, 8))
            service.kill()
            await asyncio.to_thread(service.start)

    await run(system, customer, "kill -9 gateway, then agent", 1, 300, 15, kill_and_restart)


async def test_rabbitmq_stopped_and_started_mid_run(system, customer):
    async def bounce_broker():
        await asyncio.sleep(4)
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        await asyncio.sleep(5)
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "start_app"], check=True, capture_output=True)

    await run(system, customer, "RabbitMQ stop_app / start_app", 2, 120, 10, bounce_broker)


async def test_postgresql_restarted_mid_run(system, customer):
    async def restart_database():
        await asyncio.sleep(4)
        await asyncio.to_thread(
            subprocess.run,
            ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", "restart"],
            check=True,
            capture_output=True,
        )

    await run(system, customer, "PostgreSQL restart", 3, 120, 10, restart_database)


async def test_wappi_errors_throttling_and_slow_answers(system, customer):
    async def misbehave():
        faults = [
            {"endpoint": "message/reply", "status": 500, "rate": 0.3},
            {"endpoint": "message/send", "status": 500, "rate": 0.3},
            {"endpoint": "messages/get", "status": 500, "rate": 0.3},
            {"endpoint": "chats/get", "status": 429, "count": 10},
            {"endpoint": "message/mark/read", "status": None, "latency_ms": 5000, "count": 3},
            {"endpoint": "get/status", "status": 500, "rate": 1.0},
        ]
        for fault in faults:
            (await customer.http.post("/sandbox/faults", json=fault)).raise_for_status()
        health = await get(f"{system.gateway.url}/health")
        assert health.status_code == 200 and health.json()["wappi_connection"] != "ok", health.text
        await asyncio.sleep(15)
        await customer.http.delete("/sandbox/faults")

    await run(system, customer, "Wappi 30% 500s, 429 burst, 5 s answers", 4, 120, 8, misbehave)


async def test_gemini_unavailable_for_a_minute(system, customer):
    async def outage():
        fault = {"endpoint": "gemini", "status": 503, "rate": 1.0}
        (await customer.http.post("/sandbox/faults", json=fault)).raise_for_status()
        await asyncio.sleep(10)
        health = await get(f"{system.agent.url}/health")
        assert health.status_code == 200 and health.json()["gemini"]["status"] != "ok", health.text
        await asyncio.sleep(50)
        await customer.http.delete("/sandbox/faults", params={"endpoint": "gemini"})

    await run(system, customer, "Gemini 503 for a minute", 5, 30, 2, outage)


async def test_unusable_messages_are_dead_lettered_with_a_reason_and_the_rest_answered(system, customer):
    junk = [
        b"not json at all",
        b'{"message_id": 42}',
        json.dumps({"phone_number": "77015550000", "message_text": "x" * 200_000}).encode(),
        b"\xff\xfe broken utf-8",
    ]

    async def poison_every_queue():
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            for queue in system.queues.values():
                for body in junk:
                    await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
                    await asyncio.sleep(0.5)

    await run(
        system,
        customer,
        f"junk on every queue ({len(junk) * len(system.queues)} bodies, all to DLQ)",
        6,
        60,
        6,
        poison_every_queue,
        junk=len(junk) * len(system.queues),
    )
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for queue in system.queues.values():
            dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
            while (message := await dlq.get(fail=False)) is not None:
                await message.ack()
                assert message.headers["x-dlq-reason"], message.headers
                assert "x-attempts" in message.headers, message.headers


async def test_admin_endpoints_need_the_key(system):
    for service in (system.gateway, system.agent):
        assert (await get(f"{service.url}/stats")).status_code == 401
        assert (await get(f"{service.url}/stats", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await get(f"{service.url}/stats", headers={"X-API-Key": ADMIN_KEY})).status_code == 200
