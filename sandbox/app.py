"""The sandbox app: fake Wappi, fake Gemini and the admin API on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sandbox import admin, crm, gemini, pushes, wappi
from sandbox.background import Background
from sandbox.faults import install_error_handlers
from sandbox.state import SandboxState


def create_app(state: SandboxState | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state.background.aclose()

    app = FastAPI(
        title="Sandbox: fake Wappi + fake Gemini",
        docs_url="/sandbox/docs",
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.sandbox = state or SandboxState()
    app.state.background = Background()
    install_error_handlers(app)
    app.include_router(admin.router)
    app.include_router(pushes.router)
    app.include_router(crm.router)
    app.include_router(wappi.router)
    app.include_router(gemini.router)
    return app
