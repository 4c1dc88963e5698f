"""The FastAPI app both services serve: a lifespan that keeps the service's runtime on app.state.runtime, the
service's routers, the OpenAPI pages behind the admin key (FastAPI's own would be open to all) and the
per-client rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI

from service_kit.api import RateLimitMiddleware, docs_router

RuntimeT = TypeVar("RuntimeT")
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def runtime_lifespan(
    start: Callable[[], Awaitable[RuntimeT]], stop: Callable[[RuntimeT], Awaitable[None]]
) -> Lifespan:
    """Builds the runtime with `start` before serving, keeps it on app.state.runtime, `stop`s it after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await stop(runtime)

    return lifespan


def service_app(
    title: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    *,
    api_key: Any,
    per_minute: int,
    own_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """The app with `routers`, the docs behind `api_key`, and at most `per_minute` requests per client
    (a path under a prefix of `own_limits` is counted apart, at that prefix's own rate)."""
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    for router in routers:
        app.include_router(router)
    app.include_router(docs_router(api_key))
    app.add_middleware(RateLimitMiddleware, per_minute=per_minute, own_limits=own_limits)
    return app
