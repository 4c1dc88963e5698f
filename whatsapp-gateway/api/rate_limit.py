"""Per-client rate limit of the HTTP API: a sliding window of the last minute, in process memory.

/health stays open (orchestrators probe it often). Every other request counts, also those with a
wrong key, which is what slows down guessing one."""

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

WINDOW_S = 60.0
EXEMPT_PATHS = frozenset({"/health"})
MAX_CLIENTS = 10_000  # beyond this many tracked clients, the idle ones are forgotten


class SlidingWindowLimiter:
    def __init__(self, limit: int, *, window: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self._window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, client: str) -> float | None:
        """Count a request; None if it is allowed, else the seconds until the client may try again."""
        now = self._clock()
        hits = self._hits.get(client)
        if hits is None:
            if len(self._hits) >= MAX_CLIENTS:
                self._forget_idle(now)
            hits = self._hits[client] = deque()
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self._window - now
        hits.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] <= now - self._window]:
            del self._hits[client]


def install_rate_limit(app: FastAPI, limiter: SlidingWindowLimiter) -> None:
    @app.middleware("http")
    async def rate_limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path in EXEMPT_PATHS:
            return await call_next(request)
        client = request.client.host if request.client else "unknown"
        wait = limiter.hit(client)
        if wait is None:
            return await call_next(request)
        retry_after = max(1, math.ceil(wait))
        return JSONResponse(
            {
                "detail": f"Too many requests: at most {limiter.limit} per minute from one client. "
                f"Try again in {retry_after} s."
            },
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )
