"""The whole app with the CRMs configured: an operator's reclassification through the API reaches the
sandbox's receiver and its Bitrix24 portal by the app's own worker, watched by /health, counted in /stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from app import create_app
from models import Contact
from services.gemini_client import GeminiRetries
from tests.conftest import ADMIN_KEY, fixed_clock
from tests.crm_sandbox import SECRET, gemini_beside_sandbox, portal, received, signed_correctly

AUTH = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
async def crm_app(settings, db, broker, queues, sandbox, sandbox_url) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={
            "CRM_WEBHOOK_URL": f"{sandbox_url}/crm/events",
            "CRM_WEBHOOK_SECRET": SecretStr(SECRET),
            "BITRIX24_WEBHOOK_URL": SecretStr(f"{sandbox_url}/rest/7/portal-secret/"),
        }
    )
    app = create_app(configured, clock=fixed_clock(), gemini_retries=GeminiRetries(attempts=1))
    with gemini_beside_sandbox():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as client:
                yield client


async def test_a_reclassified_client_reaches_both_crms_through_the_running_app(crm_app, db, sandbox):
    async with db.begin() as session:
        session.add(Contact(phone_number="77019990001", name="Асель", business_name="ТОО Дельта"))

    answer = await crm_app.post("/contacts/77019990001/classify", headers=AUTH)
    assert answer.status_code == 200 and answer.json()["isClient"] is True

    deadline = time.monotonic() + 15
    while not ((await received(sandbox)) and (await portal(sandbox))["leads"]):
        assert time.monotonic() < deadline, "the app's CRM worker delivered nothing"
        await asyncio.sleep(0.2)
    [event] = await received(sandbox)
    assert event["body"]["type"] == "contact.classified" and signed_correctly(event)
    [lead] = (await portal(sandbox))["leads"]
    assert lead["COMPANY_TITLE"] == "ТОО Дельта"

    health = (await crm_app.get("/health")).json()
    assert health["workers"]["crm"] == "ok"
    deadline = time.monotonic() + 5
    while (stats := (await crm_app.get("/stats", headers=AUTH)).json())["crm"]["backlog"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert stats["crm"] == {"backlog": 0, "parked": 0, "oldest_pending_s": 0.0}


async def test_stats_show_the_crm_backlog_even_with_no_crm_configured(api):
    stats = (await api.get("/stats", headers=AUTH)).json()
    assert stats["crm"] == {"backlog": 0, "parked": 0, "oldest_pending_s": 0.0}
    assert "crm" not in (await api.get("/health")).json()["workers"]
