"""whatsapp-gateway's /health as the agent reads it for the console (GATEWAY_URL): its answer, or why there
was none. /health needs no key; a gateway that does not answer in time is reported, never waited for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class GatewayHealth:
    # "ok"; "degraded": running, but Wappi is not answering; "down": unhealthy or no answer
    state: str
    body: dict[str, Any] | None  # what /health said, when it said something readable
    problem: str = ""  # why there is no answer, in Russian


async def gateway_health(base_url: str) -> GatewayHealth:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            answer = await client.get(base_url.rstrip("/") + "/health")
    except httpx.TimeoutException:
        return GatewayHealth("down", None, f"не ответил за {TIMEOUT_S:g} с")
    except httpx.HTTPError as exc:
        return GatewayHealth("down", None, f"недоступен ({type(exc).__name__})")
    try:
        body = answer.json()
    except ValueError:
        return GatewayHealth("down", None, f"ответил HTTP {answer.status_code} не в JSON")
    if not isinstance(body, dict):
        return GatewayHealth("down", None, f"ответил HTTP {answer.status_code} непонятным JSON")
    if answer.status_code != 200:
        return GatewayHealth("down", body)
    return GatewayHealth("ok" if body.get("status") in ("ok", "healthy") else "degraded", body)
