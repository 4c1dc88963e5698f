"""Scenario 6, webhook mode: how long a customer waits, from the moment fake Wappi has their message to the
moment the reply is sent, with Wappi pushing to the gateway vs polling only (the baseline), at an offered load
of new customers; then, with a fifth of the pushes lost, whether every message is still answered exactly once
(the poller, slowed to the safety net while pushes arrive, catches what was lost).

Each run gets a fresh system. The fake Gemini answers at once; the time it did take (its calls' durations
added up, per reply) is measured in the same run, since the target is 100 ms beside it."""

import asyncio
import math
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import httpx

from bench.common import (
    BENCH_SETTINGS,
    customer_message,
    gateway_times,
    new_system,
    offer_load,
    percentile,
    wait_for_sent,
)

SECRET = "bench-webhook-secret-5e6f7a8b9c0d1e2f3a4b"
SETTLE_S = 2.0
DROP_RATE = 0.2
DROP_SEED = 16
# Polling as shipped (the e2e harness polls every 0.5 s), on top of the bench's settings.
GATEWAY_ENV = BENCH_SETTINGS["whatsapp-gateway"] | {"POLLING_INTERVAL": "5"}
WEBHOOK_NOTE = (
    "Webhooks: wait from the inject answered (fake Wappi has the message, and pushes it) to the outgoing "
    "row's processed_at (fake Wappi answered the reply), new customers each writing once, "
    "MAX_SENDS_PER_MINUTE lifted; baseline: the same load polled only (POLLING_INTERVAL 5 s, the default). "
    "Gemini ms / reply: the fake Gemini's call durations added up over the replies."
)


def run_webhooks_of(config: dict[str, Any]) -> Coroutine[Any, Any, dict[str, Any]]:
    """The scenario with the bench config's webhook_* figures."""
    keys = ("webhook_rate", "webhook_seconds", "webhook_drain_s", "webhook_safety_net_s")
    return run_webhooks(*(config[key] for key in keys))


async def run_webhooks(rate: float, seconds: float, drain_s: float, safety_net_s: float) -> dict[str, Any]:
    """The three runs: polling only, pushed, pushed with DROP_RATE of the pushes lost (polled every
    `safety_net_s` while pushes arrive, as WAPPI_WEBHOOK_POLL_INTERVAL)."""
    return {
        "polling": await _run(rate, seconds, drain_s, prefix="77061"),
        "pushed": await _run(rate, seconds, drain_s, prefix="77062", webhook_poll_s=safety_net_s),
        "lossy": await _run(
            rate,
            seconds,
            drain_s + safety_net_s,
            prefix="77063",
            webhook_poll_s=safety_net_s,
            drop_rate=DROP_RATE,
        ),
        "safety_net_s": safety_net_s,
    }


async def _run(
    rate: float,
    seconds: float,
    drain_s: float,
    *,
    prefix: str,
    webhook_poll_s: float | None = None,
    drop_rate: float = 0.0,
) -> dict[str, Any]:
    webhooks = webhook_poll_s is not None
    gateway_env = GATEWAY_ENV | (
        {"WAPPI_WEBHOOK_SECRET": SECRET, "WAPPI_WEBHOOK_POLL_INTERVAL": str(webhook_poll_s)}
        if webhooks
        else {}
    )
    system = new_system()
    await asyncio.to_thread(system.start, BENCH_SETTINGS | {"whatsapp-gateway": gateway_env})
    try:
        async with httpx.AsyncClient(base_url=system.sandbox_url, timeout=60) as sandbox:
            if webhooks:
                await _register(sandbox, f"{system.gateway.url}/webhooks/wappi/{SECRET}", drop_rate)
            await asyncio.sleep(SETTLE_S)
            offer = await offer_load(system.sandbox_url, rate, seconds, lambda i: customer_message(prefix, i))
            await wait_for_sent(system.gateway.database_url, len(offer.injected), offer.ended + drain_s)
            _, sent = await gateway_times(system.gateway.database_url)
            stats = (await sandbox.get("/sandbox/stats")).json()
            replies = Counter(m["recipient"] for m in (await sandbox.get("/sandbox/sent")).json()["messages"])
            pushes = (await sandbox.get("/sandbox/webhook")).json()["webhook"]
    finally:
        await asyncio.to_thread(system.stop)
    injected = offer.injected
    waits = [(sent[m] - at) * 1000 if m in sent else math.inf for m, at in injected.items()]
    answered = sum(1 for m in injected if m in sent)
    reads = stats["calls"].get("chats/get", 0) + stats["calls"].get("messages/get", 0)
    return {
        "offered_per_s": rate,
        "achieved_offered_per_s": round(offer.achieved_rate, 1),
        "injected": len(injected),
        "answered": answered,
        # Each customer writes once: one reply each is right, more is a duplicate.
        "answered_once": sum(1 for n in replies.values() if n == 1),
        "answered_twice_or_more": sum(1 for n in replies.values() if n > 1),
        "wait_ms": {f"p{p}": percentile(waits, p / 100) for p in (50, 95, 99, 100)},
        "gemini_ms_per_reply": round(stats["gemini"]["busy_ms"] / max(answered, 1), 1),
        "wappi_reads_per_message": round(reads / max(len(injected), 1), 2),
        "pushes": pushes,
    }


async def _register(sandbox: httpx.AsyncClient, url: str, drop_rate: float) -> None:
    """As an owner registers the webhook with Wappi; a lossy run then drops a share of the pushes."""
    answer = await sandbox.post(
        "/api/webhook/url/set",
        params={"profile_id": "e2e-profile", "url": url},
        headers={"Authorization": "e2e-wappi-token"},
    )
    answer.raise_for_status()
    if drop_rate:
        body = {"url": url, "drop_rate": drop_rate, "seed": DROP_SEED}
        (await sandbox.post("/sandbox/webhook", json=body)).raise_for_status()
