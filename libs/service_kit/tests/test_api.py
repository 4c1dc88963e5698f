"""The admin API's guards: the key (constant-time, declared for the docs' Authorize button), the docs
behind it, and a rate limit whose memory stays bounded however many addresses come by."""

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service_kit.api import (
    MAX_TRACKED_CLIENTS,
    RateLimitMiddleware,
    TokenBuckets,
    api_key_dependency,
    docs_router,
)

KEY = "a-key-long-enough-for-anything-1234"


def app(per_minute: int = 100, own_limits: dict[str, int] | None = None) -> FastAPI:
    api_key = api_key_dependency(lambda request: KEY)
    app = FastAPI(title="kit", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/stats", dependencies=[api_key])
    async def stats() -> dict:
        return {"n": 1}

    @app.post("/hooks/{name}")
    async def hook(name: str) -> dict:
        return {"hook": name}

    app.include_router(docs_router(api_key))
    app.add_middleware(RateLimitMiddleware, per_minute=per_minute, own_limits=own_limits)
    return app


def client(application: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://kit")


@pytest.mark.parametrize("path", ["/stats", "/docs", "/redoc", "/openapi.json"])
async def test_everything_but_health_needs_the_key(path):
    async with client(app()) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get(path)).status_code == 401
        assert (await http.get(path, headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await http.get(path, headers={"X-API-Key": KEY})).status_code == 200


async def test_the_docs_offer_the_key_as_a_security_scheme_and_carry_the_description_inline():
    async with client(app()) as http:
        spec = (await http.get("/openapi.json", headers={"X-API-Key": KEY})).json()
        page = (await http.get("/docs", headers={"X-API-Key": KEY})).text

    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert '"/stats"' in page and "/docs" not in spec["paths"]


async def test_over_the_limit_a_client_gets_429_with_retry_after_and_health_stays_open():
    async with client(app(per_minute=3)) as http:
        codes = [(await http.get("/stats", headers={"X-API-Key": KEY})).status_code for _ in range(4)]
        refused = await http.get("/stats", headers={"X-API-Key": KEY})
        health = await http.get("/health")

    assert codes == [200, 200, 200, 429]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert health.status_code == 200


async def test_a_path_with_its_own_limit_is_counted_apart_at_its_own_rate():
    async with client(app(per_minute=2, own_limits={"/hooks/": 5})) as http:
        hooks = [(await http.post("/hooks/wappi")).status_code for _ in range(6)]
        stats = [(await http.get("/stats", headers={"X-API-Key": KEY})).status_code for _ in range(3)]
        refused = await http.post("/hooks/other")

    assert hooks == [200] * 5 + [429]
    assert stats == [200, 200, 429]  # the hook's calls took nothing from the client's own budget
    assert refused.json()["detail"].startswith("Too many requests: at most 5 per minute per client.")


def test_rotating_addresses_cannot_grow_the_limiters_memory():
    buckets = TokenBuckets(per_minute=1, clock=lambda: 0.0)

    for n in range(MAX_TRACKED_CLIENTS + 500):
        buckets.take(f"10.0.{n // 256}.{n % 256}")

    assert len(buckets) == MAX_TRACKED_CLIENTS
    assert buckets.take(f"10.0.{(MAX_TRACKED_CLIENTS + 499) // 256}.{(MAX_TRACKED_CLIENTS + 499) % 256}") > 0


RENDER_PROXIES = "10.0.0.0/8,172.64.0.0/13"  # Render's own network and one of Cloudflare's, as in render.yaml


def behind(proxy: str, application: FastAPI) -> httpx.AsyncClient:
    """The app as uvicorn serves it with FORWARDED_ALLOW_IPS set as on Render, reached from `proxy`."""
    config = uvicorn.Config(application, forwarded_allow_ips=RENDER_PROXIES)
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=(proxy, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://kit")


async def test_a_client_cannot_walk_past_the_limit_by_writing_its_own_x_forwarded_for():
    limited = app(per_minute=3)
    headers = {"X-API-Key": KEY}
    async with behind("10.19.6.53", limited) as http:
        # Each proxy appends the address it saw: the client's own text is left of its real address.
        codes = [
            (
                await http.get(
                    "/stats", headers={**headers, "X-Forwarded-For": f"1.2.3.{n}, 203.0.113.7, 172.70.247.28"}
                )
            ).status_code
            for n in range(5)
        ]
        other = await http.get("/stats", headers={**headers, "X-Forwarded-For": "198.51.100.1, 172.70.1.1"})

    assert codes == [200, 200, 200, 429, 429]
    assert other.status_code == 200


async def test_x_forwarded_for_from_an_address_that_is_not_the_proxy_is_ignored():
    async with behind("203.0.113.9", app(per_minute=2)) as http:
        codes = [
            (
                await http.get("/stats", headers={"X-API-Key": KEY, "X-Forwarded-For": f"1.2.3.{n}"})
            ).status_code
            for n in range(3)
        ]

    assert codes == [200, 200, 429]
