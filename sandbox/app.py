"""The sandbox app: fake Wappi, fake Gemini and the admin API on one port."""

from __future__ import annotations

from fastapi import FastAPI

from sandbox import admin, gemini, wappi
from sandbox.faults import install_error_handlers
from sandbox.state import SandboxState


def create_app(state: SandboxState | None = None) -> FastAPI:
    app = FastAPI(title="Sandbox: fake Wappi + fake Gemini", docs_url="/sandbox/docs", openapi_url=None)
    app.state.sandbox = state or SandboxState()
    install_error_handlers(app)
    app.include_router(admin.router)
    app.include_router(wappi.router)
    app.include_router(gemini.router)
    return app
