"""Scenario 1, the pipeline: sandbox Wappi + fake Gemini at zero latency, both services running, an offered
load of customer messages for a fixed time. Each load level gets a fresh system, so one level's backlog
never leaks into the next."""

import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    BENCH_SETTINGS,
    cpu_per_reply,
    cpu_seconds,
    customer_message,
    gateway_times,
    new_system,
    offer_load,
    services_memory,
    summarize,
    system_pids,
    transactions,
    wait_for_sent,
)

SETTLE_S = 2.0  # after start-up, before the idle memory is read


async def run_pipeline(rate: float, seconds: float, drain_s: float) -> dict[str, Any]:
    system = new_system()
    await asyncio.to_thread(system.start, BENCH_SETTINGS)
    try:
        await asyncio.sleep(SETTLE_S)
        idle = services_memory(system)
        pids = system_pids(system)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        databases = [service.database for service in system.services.values()]
        transactions_before = await transactions(databases)
        offer = await offer_load(
            system.sandbox_url, rate, seconds, lambda i: customer_message(f"7705{int(rate) % 10}", i)
        )
        drained_at = await wait_for_sent(
            system.gateway.database_url, len(offer.injected), offer.ended + drain_s
        )
        drain_used = time.time() - offer.ended
        cpu = cpu_per_reply(cpu_before, pids, drained_at)
        seen, sent = await gateway_times(system.gateway.database_url)
        after = services_memory(system)
        async with httpx.AsyncClient(base_url=system.sandbox_url, timeout=60) as http:
            stats = (await http.get("/sandbox/stats")).json()
            sandbox_sent = len((await http.get("/sandbox/sent")).json()["messages"])
        for service in system.services.values():  # ended backends have reported their transactions
            await asyncio.to_thread(service.stop)
        done_transactions = await transactions(databases) - transactions_before
    finally:
        await asyncio.to_thread(system.stop)
    result = summarize(offer, seen, sent)
    injected = max(result["injected"], 1)
    result.update(
        memory={"idle": idle, "after": after},
        cpu_ms_per_reply=cpu,
        db_transactions_per_reply=round(done_transactions / max(drained_at, 1), 1),
        drain_s=round(drain_used, 1),
        sent_at_end=drained_at,
        sandbox_sent=sandbox_sent,
        wappi_calls_per_message={
            endpoint: round(n / injected, 2) for endpoint, n in sorted(stats["calls"].items())
        },
    )
    return result
