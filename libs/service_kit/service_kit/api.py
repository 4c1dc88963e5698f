"""The admin API's guards, the same on both services: the X-API-Key check (declared as a security scheme,
so the docs' Authorize button sets it), the OpenAPI pages behind that key, and a per-client rate limit."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Security, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from loguru import logger
from starlette.types import ASGIApp, Receive, Scope, Send

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"
OPEN_PATHS = frozenset({"/health"})  # probed by orchestrators: never keyed, never limited
MAX_TRACKED_CLIENTS = 10_000


def api_key_dependency(expected_key: Callable[[Request], str]) -> Any:
    """A dependency that answers 401 unless X-API-Key equals `expected_key(request)`."""

    def require_api_key(
        request: Request, presented: Annotated[str | None, Security(API_KEY_HEADER)] = None
    ) -> None:
        expected = expected_key(request).encode("utf-8")
        # compare_digest: the time taken does not tell how much of a guessed key was right.
        if presented is None or not secrets.compare_digest(presented.encode("utf-8"), expected):
            # The presented value is never logged: it may be a real key sent to the wrong service.
            logger.warning(
                "Refused {} {}: {} X-API-Key",
                request.method,
                request.url.path,
                "missing" if presented is None else "wrong",
            )
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Missing or invalid X-API-Key header")

    return Depends(require_api_key)


def docs_router(api_key: Any) -> APIRouter:
    """/openapi.json, /docs (Swagger) and /redoc, behind `api_key`. The pages carry the description inline:
    their own fetch of /openapi.json would go out without the key."""
    router = APIRouter(dependencies=[api_key], include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{request.app.title} API",
            swagger_ui_parameters={"spec": request.app.openapi(), "persistAuthorization": True},
        )

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        spec = json.dumps(request.app.openapi(), ensure_ascii=False).replace("</", "<\\/")
        return HTMLResponse(
            f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{request.app.title} API</title></head>
<body><div id="redoc"></div><script src="{REDOC_JS}"></script>
<script>Redoc.init({spec}, {{}}, document.getElementById("redoc"))</script></body></html>"""
        )

    return router


class TokenBuckets:
    """`per_minute` requests per key, refilled continuously; a full minute's worth may come in a burst.

    At most MAX_TRACKED_CLIENTS keys are kept, the least recently seen forgotten first, so rotating
    addresses cannot grow the memory (a forgotten client comes back with a full bucket).
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)

    def take(self, key: str) -> float:
        """0 when the request may go ahead, otherwise the seconds until it could."""
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.refill_per_second)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill_per_second
        self._buckets[key] = (tokens - 1.0 if not wait else tokens, now)
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimitMiddleware:
    """429 with Retry-After once a client address has used up `per_minute` requests; /health is open.

    A path under one of `own_limits`' prefixes is counted apart, at its own rate: a webhook that a partner
    calls for every message neither eats into an operator's budget nor is held to it.
    Each replica counts on its own. The address is the connection's, or the one a trusted proxy put in
    X-Forwarded-For (uvicorn's forwarded_allow_ips decides which proxy is trusted).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        own_limits: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.app = app
        self.per_minute = per_minute
        self.buckets = TokenBuckets(per_minute, clock)
        self.own_buckets = {prefix: TokenBuckets(n, clock) for prefix, n in (own_limits or {}).items()}

    def _buckets_for(self, path: str) -> TokenBuckets:
        for prefix, buckets in self.own_buckets.items():
            if path.startswith(prefix):
                return buckets
        return self.buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        buckets = self._buckets_for(scope["path"])
        wait = buckets.take(address)
        if not wait:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        per_minute = int(buckets.capacity)
        detail = f"Too many requests: at most {per_minute} per minute per client. Retry in {retry_after} s."
        headers = {"Retry-After": str(retry_after)}
        await JSONResponse({"detail": detail}, status_code=429, headers=headers)(scope, receive, send)
