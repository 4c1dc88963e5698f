"""The admin key on every endpoint but /health, and the per-client rate limit."""

import httpx
import pytest

from tests.conftest import ADMIN_KEY, running_gateway

KEY = {"X-API-Key": ADMIN_KEY}


async def test_every_endpoint_but_health_needs_the_key(gateway):
    app, client = gateway
    # Every route there is (also ones added later), as the app itself describes them.
    paths = app.openapi()["paths"]
    routes = [(method.upper(), path) for path, item in paths.items() for method in item]
    assert ("GET", "/health") in routes and len(routes) >= 5
    for method, path in routes:
        if path == "/health":
            continue
        for key in (None, "", ADMIN_KEY + "x", ADMIN_KEY[:-1], "ключ".encode()):
            headers = {} if key is None else {"X-API-Key": key}
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, key)
            assert response.json() == {"detail": "Missing or invalid X-API-Key header"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
async def test_the_api_docs_need_the_key(gateway, path, headers):
    _, client = gateway
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing or invalid X-API-Key header"}


async def test_with_the_key_the_docs_are_served_and_declare_the_key_for_try_it_out(gateway):
    _, client = gateway
    swagger = await client.get("/docs", headers=KEY)
    redoc = await client.get("/redoc", headers=KEY)
    spec = await client.get("/openapi.json", headers=KEY)
    assert (swagger.status_code, redoc.status_code, spec.status_code) == (200, 200, 200)
    assert "swagger-ui" in swagger.text and "/openapi.json" in swagger.text
    assert "redoc" in redoc.text
    schemes = spec.json()["components"]["securitySchemes"]
    assert list(schemes.values()) == [
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
        }
    ]
    [scheme] = schemes
    paths = spec.json()["paths"]
    assert paths["/stats"]["get"]["security"] == [{scheme: []}]
    assert "security" not in paths["/health"]["get"]
    assert not {"/docs", "/redoc", "/openapi.json"} & set(paths)


@pytest.mark.usefixtures("clean")
async def test_over_the_limit_a_client_gets_429_with_retry_after_and_others_are_unaffected(settings):
    limited = settings.model_copy(update={"RATE_LIMIT_PER_MINUTE": 3})
    async with running_gateway(limited) as (app, client):
        answers = [(await client.get("/stats", headers=KEY)).status_code for _ in range(3)]
        # Wrong keys count as well: that is what makes guessing the key slow.
        over = await client.get("/stats", headers={"X-API-Key": "guess"})
        health = [(await client.get("/health")).status_code for _ in range(5)]
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 40000)), base_url="http://gateway.test"
        )
        async with other:
            elsewhere = await other.get("/stats", headers=KEY)
    assert answers == [200, 200, 200]
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.json()["detail"].startswith("Too many requests: at most 3 per minute per client.")
    assert health == [200] * 5
    assert elsewhere.status_code == 200
