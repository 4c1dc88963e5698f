"""Scenario 2, LLM-bound concurrency: fake Gemini answers after 2 s, 300 customers write at once.

Two rounds on one system. New customers first (each reply needs the moderator and then the sales call, so
at least 4 s of Gemini), then the same 300 conversations go on (now classified: one 2 s call per reply).
Between the rounds the sandbox is reset, which zeroes its peak in-flight counter; the chats start afresh
there, the services keep what they know."""

import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    BENCH_SETTINGS,
    customer_message,
    gateway_times,
    inject_all,
    new_system,
    services_memory,
    wait_for_sent,
)
from system import System

FOLLOW_UP_QUESTION = "Спасибо. А интеграция с Kaspi входит в тариф Бизнес или оплачивается отдельно?"


async def slow_gemini(http: httpx.AsyncClient, latency_ms: int) -> None:
    await http.post("/sandbox/reset")
    fault = {"endpoint": "gemini", "status": None, "latency_ms": latency_ms}
    (await http.post("/sandbox/faults", json=fault)).raise_for_status()


async def run_round(system: System, http: httpx.AsyncClient, messages: list[dict], limit_s: float) -> dict:
    already = len((await gateway_times(system.gateway.database_url))[1])
    injected = await inject_all(system.sandbox_url, messages, concurrency=64)
    await wait_for_sent(system.gateway.database_url, already + len(injected), time.time() + limit_s)
    seen, sent = await gateway_times(system.gateway.database_url)
    answered = [sent[m] for m in injected if m in sent]
    first_seen = min(seen[m] for m in injected if m in seen)
    span = max(answered) - first_seen if answered else limit_s
    stats = (await http.get("/sandbox/stats")).json()
    return {
        "conversations": len(messages),
        "answered": len(answered),
        "seconds": round(span, 1),
        "replies_per_s": round(len(answered) / span, 1) if answered else 0.0,
        "gemini_calls": stats["gemini"]["calls"],
        "gemini_peak_in_flight": stats["gemini"]["peak_in_flight"],
    }


async def run_llm_bound(conversations: int, latency_ms: int, limit_s: float) -> dict[str, Any]:
    system = new_system()
    await asyncio.to_thread(system.start, BENCH_SETTINGS)
    try:
        async with httpx.AsyncClient(base_url=system.sandbox_url, timeout=60) as http:
            await slow_gemini(http, latency_ms)
            first = [customer_message("7711", i) for i in range(conversations)]
            new_customers = await run_round(system, http, first, limit_s)
            await slow_gemini(http, latency_ms)
            again = [customer_message("7711", i, FOLLOW_UP_QUESTION) for i in range(conversations)]
            ongoing = await run_round(system, http, again, limit_s)
        memory = services_memory(system)
    finally:
        await asyncio.to_thread(system.stop)
    return {"latency_ms": latency_ms, "new": new_customers, "ongoing": ongoing, "memory_after": memory}
