"""Requests per client IP: a token bucket per address, in process memory. /health is never limited.

Each replica counts on its own. Behind a proxy the client address is the proxy's unless uvicorn is run
with --proxy-headers and --forwarded-allow-ips for that proxy (X-Forwarded-For is not trusted here).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from loguru import logger
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PATHS = frozenset({"/health"})
# Past this many tracked addresses, those whose bucket has refilled (idle clients) are forgotten.
MAX_TRACKED_CLIENTS = 10_000


class TokenBuckets:
    """`per_minute` requests per key, refilled continuously; a full minute's worth may come in a burst."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated at)

    def take(self, key: str) -> float:
        """0 when the request may go ahead, otherwise the seconds until it could."""
        now = self._clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_TRACKED_CLIENTS:
                self._forget_idle(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.refill_per_second

    def _forget_idle(self, now: float) -> None:
        idle_after = self.capacity / self.refill_per_second
        self._buckets = {
            key: (tokens, updated)
            for key, (tokens, updated) in self._buckets.items()
            if now - updated < idle_after
        }


class RateLimitMiddleware:
    """429 with Retry-After once a client IP has used up RATE_LIMIT_PER_MINUTE."""

    def __init__(self, app: ASGIApp, *, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.per_minute = per_minute
        self.buckets = TokenBuckets(per_minute, clock)
        self._limited: set[str] = set()  # warned about once per episode, not once per refused request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.buckets.take(address)
        if not wait:
            self._limited.discard(address)
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        if address not in self._limited:
            if len(self._limited) > MAX_TRACKED_CLIENTS:
                self._limited.clear()
            self._limited.add(address)
            logger.warning("Rate limit reached by {} ({}/min): answering 429", address, self.per_minute)
        detail = (
            f"Too many requests: at most {self.per_minute} per minute per client. Retry in {retry_after} s."
        )
        headers = {"Retry-After": str(retry_after)}
        await JSONResponse({"detail": detail}, status_code=429, headers=headers)(scope, receive, send)
