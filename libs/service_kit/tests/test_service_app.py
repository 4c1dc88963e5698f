"""A service's app: the runtime lives on app.state while the app runs and is stopped after; the docs are
keyed, /health is open and never limited."""

import httpx
from fastapi import APIRouter, Request

from service_kit.api import api_key_dependency
from service_kit.app import runtime_lifespan, service_app

KEY = "a-key-long-enough-for-anything-1234"


async def test_the_runtime_is_on_app_state_while_serving_and_stopped_after():
    stopped: list[dict] = []

    async def start() -> dict:
        return {"name": "runtime"}

    async def stop(runtime: dict) -> None:
        stopped.append(runtime)

    router = APIRouter()

    @router.get("/health")
    async def health(request: Request) -> dict:
        return {"runtime": request.app.state.runtime["name"]}

    api_key = api_key_dependency(lambda request: KEY)
    app = service_app("kit", runtime_lifespan(start, stop), [router], api_key=api_key, per_minute=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            health = [await http.get("/health") for _ in range(4)]
            docs = [
                (await http.get("/docs")).status_code,
                (await http.get("/docs", headers={"X-API-Key": KEY})),
            ]

        assert stopped == []

    assert [r.json() for r in health] == [{"runtime": "runtime"}] * 4
    assert docs[0] == 401 and docs[1].status_code == 200
    assert stopped == [{"name": "runtime"}]
