"""Scenario 3, polling cost: 1,000 chats of history on the account before the gateway's first start, then
Wappi calls and time per poll cycle when 0, 1 and 50 chats have something new.

A cycle ends when the gateway writes poll_state.last_poll_time; the bench watches that row, so it reads
the sandbox's call counters between cycles (the poller then sleeps POLLING_INTERVAL) and the cycle's time
is the gap between two ends less that sleep."""

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from bench.common import customer_message, inject_all, migrate, new_system, services_memory
from system import drop_database

# Long enough to inject 50 messages between two cycles on a busy machine, so one cycle finds them all.
POLLING_INTERVAL_S = 1.0
CYCLE_LIMIT_S = 60.0  # a cycle that takes longer means the poller is stuck
POLLER_ENDPOINTS = ("chats/get", "messages/get")  # the sender's calls (reply, mark/read) are not polling


class CycleWatcher:
    """Sees each end of a poll cycle (a new last_poll_time) within a few milliseconds."""

    def __init__(self, connection: asyncpg.Connection):
        self.connection = connection
        self.last: float | None = None

    async def current(self) -> float | None:
        return await self.connection.fetchval(
            "SELECT extract(epoch FROM value)::float8 FROM poll_state WHERE name = 'last_poll_time'"
        )

    async def sync(self) -> None:
        """Forget ends that happened while nobody watched: the next end is a fresh one."""
        self.last = await self.current()

    async def next_end(self) -> float:
        deadline = time.monotonic() + CYCLE_LIMIT_S
        while time.monotonic() < deadline:
            value = await self.current()
            if value is not None and value != self.last:
                self.last = value
                return value
            await asyncio.sleep(0.01)
        raise TimeoutError("the poller completed no cycle")


async def poller_calls(http: httpx.AsyncClient) -> dict[str, int]:
    calls = (await http.get("/sandbox/stats")).json()["calls"]
    return {endpoint: calls.get(endpoint, 0) for endpoint in POLLER_ENDPOINTS}


async def measure_cycles(
    watcher: CycleWatcher, http: httpx.AsyncClient, cycles: int, news: list[dict] | None = None
) -> dict[str, Any]:
    """Calls per cycle and cycle time over `cycles` cycles; `news` are written just after a cycle ended,
    so the first measured cycle is the one that finds them."""
    await watcher.sync()
    start_end = await watcher.next_end()
    start_calls = await poller_calls(http)
    news = news or []
    injected = await inject_all(str(http.base_url), news, concurrency=max(len(news), 1))
    ends = [start_end]
    for _ in range(cycles):
        ends.append(await watcher.next_end())
    end_calls = await poller_calls(http)
    gaps_ms = [(b - a - POLLING_INTERVAL_S) * 1000 for a, b in zip(ends, ends[1:], strict=False)]
    per_cycle = {e: (end_calls[e] - start_calls[e]) / cycles for e in POLLER_ENDPOINTS}
    forwarded = await watcher.connection.fetchval(
        "SELECT count(*) FROM message_logs WHERE message_id = ANY($1::text[])", list(injected)
    )
    return {
        "cycles": cycles,
        "calls_per_cycle": sum(per_cycle.values()),
        "calls_by_endpoint": per_cycle,
        "cycle_ms": round(max(sum(gaps_ms) / len(gaps_ms), 0.0), 1),
        "new": len(news),
        "forwarded_in_cycle": forwarded,
    }


async def run_polling(chats: int, idle_cycles: int) -> dict[str, Any]:
    system = new_system()
    env = {"whatsapp-gateway": {"POLLING_INTERVAL": str(POLLING_INTERVAL_S)}}
    await asyncio.to_thread(system.start, env)
    try:
        await asyncio.sleep(2)
        idle_memory = services_memory(system)
        # The account's history must exist before the gateway's first start: a stopped gateway, a fresh
        # database (so the next start is its first), the chats, then the start.
        gateway = system.gateway
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(drop_database, gateway.database)
        await asyncio.to_thread(migrate, "whatsapp-gateway", gateway.database, gateway.database_url)
        history = [
            customer_message("7708", i, "Добрый день, сколько стоит тариф Старт?") for i in range(chats)
        ]
        await inject_all(system.sandbox_url, history)
        await asyncio.sleep(1.1)  # Wappi times are whole seconds: history must be older than the first start
        await asyncio.to_thread(gateway.start)

        connection = await asyncpg.connect(gateway.database_url)
        try:
            async with httpx.AsyncClient(base_url=system.sandbox_url, timeout=30) as http:
                watcher = CycleWatcher(connection)
                await watcher.next_end()  # the first cycle (it records the first start)
                result = {"idle": await measure_cycles(watcher, http, idle_cycles)}
                for label, count, prefix in (("one_new", 1, "7709"), ("fifty_new", 50, "7710")):
                    news = [customer_message(prefix, i) for i in range(count)]
                    result[label] = await measure_cycles(watcher, http, 1, news)
                    await asyncio.sleep(3)  # the replies go out and their echoes are read before the next
                result["memory"] = {"idle": idle_memory, "after": services_memory(system)}
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(system.stop)
    return result
