"""The API's doors: X-API-Key on everything but /health, and a per-client rate limit with Retry-After."""

import httpx
import pytest

from app import create_app
from service_kit.api import TokenBuckets
from tests.conftest import ADMIN_KEY, fixed_clock

AUTH = {"X-API-Key": ADMIN_KEY}
LIMIT = 5


@pytest.fixture
async def app(settings, db, broker, gemini, queues):
    app = create_app(settings.model_copy(update={"RATE_LIMIT_PER_MINUTE": LIMIT}), clock=fixed_clock())
    async with app.router.lifespan_context(app):
        yield app


def client_at(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://agent.test")


async def test_a_client_over_the_limit_gets_429_with_retry_after(app):
    async with client_at(app, "10.0.0.1") as client:
        allowed = [(await client.get("/contacts", headers=AUTH)).status_code for _ in range(LIMIT)]
        refused = await client.get("/contacts", headers=AUTH)

    assert allowed == [200] * LIMIT
    assert refused.status_code == 429
    # One request comes back every 60 / LIMIT = 12 s.
    assert 1 <= int(refused.headers["Retry-After"]) <= 12
    detail = refused.json()["detail"]
    assert detail.startswith(f"Too many requests: at most {LIMIT} per minute per client.")
    assert f"Retry in {refused.headers['Retry-After']} s." in detail


async def test_health_is_never_limited_and_other_clients_are_not_affected(app):
    async with client_at(app, "10.0.0.2") as busy, client_at(app, "10.0.0.3") as other:
        for _ in range(LIMIT + 1):
            await busy.get("/stats", headers=AUTH)
        assert (await busy.get("/stats", headers=AUTH)).status_code == 429
        health = [(await busy.get("/health")).status_code for _ in range(3 * LIMIT)]
        assert health == [200] * (3 * LIMIT)
        assert (await other.get("/stats", headers=AUTH)).status_code == 200


async def test_guessing_keys_is_rate_limited_too(app):
    async with client_at(app, "10.0.0.4") as client:
        guesses = [await client.get("/contacts", headers={"X-API-Key": f"k{n}"}) for n in range(LIMIT + 1)]

    assert [response.status_code for response in guesses] == [401] * LIMIT + [429]


@pytest.mark.parametrize(
    "key",
    [b"", b"x" * 10_000, ADMIN_KEY.upper().encode(), ADMIN_KEY[:-1].encode(), "ключ".encode(), b"\xff\xfe"],
)
async def test_a_wrong_key_of_any_shape_is_401_never_500(app, key):
    async with client_at(app, "10.0.1.1") as client:
        response = await client.get("/contacts", headers={"X-API-Key": key})

    assert response.status_code == 401
    assert response.json() == {"detail": "Missing or invalid X-API-Key header"}


def test_a_bucket_refills_over_the_minute():
    now = [0.0]
    buckets = TokenBuckets(per_minute=3, clock=lambda: now[0])

    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)
    assert buckets.take("b") == 0.0
    now[0] = 19.0
    assert buckets.take("a") == pytest.approx(1.0)
    now[0] = 20.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
