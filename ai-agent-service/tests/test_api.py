"""The HTTP API of the running app (lifespan included): auth, 404/422, pagination, stats, reclassification."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from models import Contact, FollowUp, LlmUsage, Message, ScheduledCall
from tests.conftest import ADMIN_KEY, WEDNESDAY_3PM, fixed_clock

AUTH = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
async def seeded(db) -> list[Contact]:
    async with db.begin() as session:
        contacts = [
            Contact(
                phone_number=f"7702000000{n}",
                name=f"Контакт {n}",
                is_client=value,
                last_message_at=WEDNESDAY_3PM - timedelta(minutes=n),
            )
            for n, value in enumerate([True, True, False, None, None])
        ]
        session.add_all(contacts)
        await session.flush()
        first = contacts[0]
        for n in range(7):
            session.add(
                Message(
                    contact_id=first.id,
                    phone_number=first.phone_number,
                    message_id=None if n % 2 else f"api-{n}",
                    message_text=f"сообщение {n}",
                    is_from_bot=bool(n % 2),
                    sent_by="reply" if n % 2 else None,
                    published_at=WEDNESDAY_3PM if n % 2 else None,
                    timestamp=WEDNESDAY_3PM - timedelta(minutes=10 - n),
                )
            )
        session.add_all(
            [
                FollowUp(
                    contact_id=first.id, touch_number=1, next_touch_at=WEDNESDAY_3PM - timedelta(hours=1)
                ),
                FollowUp(
                    contact_id=contacts[1].id, touch_number=2, next_touch_at=WEDNESDAY_3PM + timedelta(days=1)
                ),
                FollowUp(contact_id=contacts[2].id, is_completed=True, stop_reason="client_said_no"),
                ScheduledCall(contact_id=first.id, scheduled_at=datetime(2026, 11, 26, 5, tzinfo=UTC)),
                ScheduledCall(
                    contact_id=contacts[1].id,
                    scheduled_at=datetime(2026, 11, 26, 6, tzinfo=UTC),
                    status="cancelled",
                ),
                LlmUsage(purpose="moderator", model="m", prompt_tokens=100, output_tokens=20),
                LlmUsage(
                    purpose="sales_agent",
                    model="m",
                    prompt_tokens=300,
                    output_tokens=50,
                    created_at=WEDNESDAY_3PM - timedelta(days=2),
                ),
            ]
        )
    return contacts


async def test_health_needs_no_key_and_reports_every_dependency(api):
    response = await api.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"], body["consumer"]) == ("ok", "ok", "ok", "ok")
    assert body["gemini"]["model"] == "gemini-2.5-pro"


@pytest.mark.parametrize(
    "path",
    [
        "/stats",
        "/contacts",
        "/contacts/77020000000",
        "/messages/1",
        "/follow-ups/active",
        "/follow-ups/pending",
        "/scheduled-calls",
        "/metrics",
        "/contacts/77020000000/decisions",
        "/docs",
        "/redoc",
        "/openapi.json",
    ],
)
async def test_every_other_endpoint_needs_the_api_key(api, path):
    assert (await api.get(path)).status_code == 401
    wrong = await api.get(path, headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Missing or invalid X-API-Key header"
    assert (await api.post("/contacts/77020000000/classify")).status_code == 401


async def test_the_api_docs_open_with_the_key_and_offer_it_as_the_authorize_scheme(api):
    spec = (await api.get("/openapi.json", headers=AUTH)).json()

    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert "/contacts/{phone}/decisions" in spec["paths"] and "/docs" not in spec["paths"]
    for page in ("/docs", "/redoc"):
        answer = await api.get(page, headers=AUTH)
        assert answer.status_code == 200 and "/contacts/{phone}/decisions" in answer.text


async def test_unknown_phone_and_contact_are_404_with_a_message(api, seeded):
    response = await api.get("/contacts/77999999999", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["detail"] == "No contact with phone number 77999999999"
    assert (await api.get("/messages/999", headers=AUTH)).status_code == 404
    assert (await api.post("/contacts/77999999999/classify", headers=AUTH)).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "/contacts?limit=0",
        "/contacts?limit=501",
        "/contacts?offset=-1",
        "/contacts?is_client=maybe",
        "/scheduled-calls?status=done",
        "/messages/abc",
        "/contacts/not-a-phone",
    ],
)
async def test_bad_queries_are_422(api, query):
    assert (await api.get(query, headers=AUTH)).status_code == 422


async def test_contacts_paginate_and_filter_by_classification(api, seeded):
    page = (await api.get("/contacts?limit=2&offset=0", headers=AUTH)).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 0)
    assert [c["phone_number"] for c in page["items"]] == ["77020000000", "77020000001"]
    last = (await api.get("/contacts?limit=2&offset=4", headers=AUTH)).json()
    assert [c["phone_number"] for c in last["items"]] == ["77020000004"]

    counts = {}
    for value in ("true", "false", "null"):
        counts[value] = (await api.get(f"/contacts?is_client={value}", headers=AUTH)).json()["total"]
    assert counts == {"true": 2, "false": 1, "null": 2}


async def test_one_contact_with_its_calls(api, seeded):
    body = (await api.get("/contacts/+77020000000", headers=AUTH)).json()

    assert body["is_client"] is True and body["message_count"] == 7
    assert [c["status"] for c in body["scheduled_calls"]] == ["scheduled"]


async def test_messages_page_newest_first(api, seeded):
    contact_id = seeded[0].id
    page = (await api.get(f"/messages/{contact_id}?limit=3&offset=1", headers=AUTH)).json()

    assert page["total"] == 7
    assert [m["message_text"] for m in page["items"]] == ["сообщение 5", "сообщение 4", "сообщение 3"]


async def test_follow_ups_and_calls_lists(api, seeded):
    active = (await api.get("/follow-ups/active", headers=AUTH)).json()
    pending = (await api.get("/follow-ups/pending", headers=AUTH)).json()
    scheduled = (await api.get("/scheduled-calls?status=scheduled", headers=AUTH)).json()
    every_call = (await api.get("/scheduled-calls", headers=AUTH)).json()

    assert active["total"] == 2
    assert [f["touch_number"] for f in pending["items"]] == [1]
    assert scheduled["total"] == 1 and every_call["total"] == 2


async def test_stats_count_what_the_agent_did(api, seeded):
    stats = (await api.get("/stats", headers=AUTH)).json()

    assert stats["classifications"] == {"client": 2, "non_client": 1, "unknown": 2}
    assert stats["replies_sent_today"] == 3
    assert stats["follow_ups_active"] == 2
    assert stats["calls_booked"] == 1
    assert stats["gemini_tokens"]["total"] == {"prompt": 400, "output": 70}
    assert stats["gemini_tokens"]["today"]["prompt"] >= 100
    assert api_queue_names(stats) >= {"incoming_messages", "outgoing_messages"}


def api_queue_names(stats) -> set[str]:
    return {name.rsplit("_", 1)[0] for name in stats["queues"] if not name.endswith(".dlq")}


async def test_metrics_are_prometheus_text(api, seeded):
    response = await api.get("/metrics", headers=AUTH)

    assert response.status_code == 200
    assert "ai_agent_follow_ups_active 2.0" in response.text
    assert "ai_agent_gemini_tokens_total" in response.text or "ai_agent_replies_total" in response.text


async def test_forced_reclassification_runs_the_moderator_now(api, seeded, db, gemini):
    gemini.moderator = lambda prompt: {"isClient": False, "confidence": 0.77, "reasoning": "личная переписка"}

    response = await api.post("/contacts/77020000000/classify", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert (body["isClient"], body["confidence"], body["contact"]["is_client"]) == (False, 0.77, False)
    async with db() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == "77020000000"))
    assert contact.is_client is False and contact.classification_reasoning == "личная переписка"
    assert "Название компании:" in gemini.prompts_of("moderator")[0]


async def test_health_is_503_when_the_database_is_gone(settings, broker, gemini, queues):
    broken = settings.model_copy(
        update={"DATABASE_URL": settings.DATABASE_URL.rsplit("/", 1)[0] + "/no_such_db"}
    )
    app = create_app(broken, clock=fixed_clock())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://agent.test"
        ) as client:
            response = await client.get("/health")

    assert response.status_code == 503
    assert (response.json()["database"], response.json()["broker"]) == ("down", "ok")


async def test_clock_offset_runs_the_service_as_if_it_were_another_day(settings, db, broker, gemini, queues):
    async with db.begin() as session:
        contact = Contact(phone_number="77020000009", is_client=True)
        session.add(contact)
        await session.flush()
        due_in_two_days = datetime.now(UTC) + timedelta(days=2)
        session.add(FollowUp(contact_id=contact.id, touch_number=1, next_touch_at=due_in_two_days))
    three_days_ahead = settings.model_copy(update={"CLOCK_OFFSET_SECONDS": 3 * 86400})
    app = create_app(three_days_ahead)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
            pending = (await client.get("/follow-ups/pending", headers=AUTH)).json()

    assert [item["contact_id"] for item in pending["items"]] == [contact.id]
