"""The CRM hand-off against the sandbox: its signed-event receiver (POST /crm/events) and its Bitrix24 portal.
Events are recorded by the product's own hooks (a verdict, an opt-out, a booked call) in the transaction of
their fact, and delivered by the worker: every event once to a receiver that was down for a while, never
again once it answered 2xx, one lead per client in Bitrix24, a booked call as a call on that lead."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models import Contact, CrmEvent, ScheduledCall
from services.ai_moderator import ModeratorVerdict, store_verdict
from services.bitrix24_client import Bitrix24Client
from services.call_changes import move_scheduled_call
from services.crm_delivery import Backoff, CrmDeps, claim_due, deliver_due
from services.crm_events import (
    BITRIX24,
    CALL_BOOKED,
    WEBHOOK,
    call_data,
    crm_backlog,
    crm_session_info,
    record_crm_event,
)
from services.crm_webhook import CrmWebhookClient
from services.message_consumer import Outcome
from tests.conftest import handle, incoming, make_agent
from tests.crm_sandbox import SECRET, portal, received, signed_correctly
from tests.crm_sandbox import gemini_beside_sandbox as on_respx_beside_sandbox
from tests.gemini_stub import GeminiStub
from utils.metrics import AgentMetrics

QUICK = Backoff(first_s=0.05, cap_s=0.2)
BOTH = (WEBHOOK, BITRIX24)


def recording(engine: AsyncEngine, targets: tuple[str, ...] = BOTH) -> async_sessionmaker[AsyncSession]:
    """Sessions as app.py configures them when the CRMs are set."""
    return async_sessionmaker(engine, expire_on_commit=False, info=crm_session_info(targets))


@pytest.fixture
def gemini_beside_sandbox() -> Iterator[GeminiStub]:
    with on_respx_beside_sandbox() as stub:
        yield stub


@pytest.fixture
def crm_db(engine, db) -> async_sessionmaker[AsyncSession]:
    return recording(engine)


def crm_deps(sandbox_url: str, sessions, **overrides: Any) -> CrmDeps:
    return CrmDeps(
        sessions,
        webhook=CrmWebhookClient(f"{sandbox_url}/crm/events", SECRET),
        bitrix24=Bitrix24Client(f"{sandbox_url}/rest/1/b24secret/", min_interval_s=0),
        backoff=QUICK,
        **overrides,
    )


@pytest.fixture
async def crm(sandbox, sandbox_url, crm_db) -> AsyncIterator[CrmDeps]:
    deps = crm_deps(sandbox_url, crm_db)
    yield deps
    await deps.aclose()


async def classify(sessions, phone: str, is_client: bool | None, *, name: str = "Иван") -> int:
    """The moderator's verdict stored as the consumer stores it, in a transaction of its own."""
    async with sessions.begin() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == phone))
        if contact is None:
            contact = Contact(phone_number=phone, name=name, full_name=f"{name} Петров")
            session.add(contact)
            await session.flush()
        verdict = ModeratorVerdict(
            isClient=is_client, confidence=0.9, reasoning="Спрашивает цены на СкладПро"
        )
        store_verdict(contact, verdict, AgentMetrics())
        return contact.id


async def book_call(sessions, contact_id: int, at: datetime) -> int:
    async with sessions.begin() as session:
        contact = await session.get_one(Contact, contact_id)
        call = ScheduledCall(
            contact_id=contact_id, scheduled_at=at, manager_name="Айгуль", manager_phone="77010000001"
        )
        session.add(call)
        await session.flush()
        record_crm_event(session, CALL_BOOKED, contact, call_data(call))
        return call.id


async def deliver_all(deps: CrmDeps, timeout_s: float = 30) -> None:
    """Runs the worker until nothing waits (parked rows aside)."""
    deadline = time.monotonic() + timeout_s
    while True:
        await deliver_due(deps)
        async with deps.sessions() as session:
            if (await crm_backlog(session))["backlog"] == 0:
                return
        assert time.monotonic() < deadline, "the CRM backlog did not drain"
        await asyncio.sleep(0.05)


async def events(sessions) -> list[CrmEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(CrmEvent).order_by(CrmEvent.id)))


async def test_a_client_found_by_the_moderator_reaches_the_receiver_signed_and_becomes_a_lead(
    crm, crm_db, settings, broker, llm, knowledge, gemini_beside_sandbox, queues, sandbox
):
    agent = make_agent(settings, crm_db, broker, llm, knowledge)
    message = incoming("Сколько стоит СкладПро для трёх складов?", phone="77011112233", business="ТОО Альфа")

    assert await handle(message, agent) is Outcome.REPLIED
    await deliver_all(crm)

    [event] = await received(sandbox)
    assert signed_correctly(event)
    body = event["body"]
    assert event["headers"]["x-event-id"] == body["event_id"]
    assert body["type"] == "contact.classified"
    assert body["contact"] == {
        "id": body["contact"]["id"],
        "phone": "+77011112233",
        "name": "Иван",
        "full_name": "Иван",
        "business_name": "ТОО Альфа",
        "is_client": True,
    }
    assert body["data"] == {"is_client": True, "confidence": 0.9, "reasoning": "test rule", "previous": None}
    assert datetime.fromisoformat(body["occurred_at"]).tzinfo is not None
    [lead] = (await portal(sandbox))["leads"]
    assert lead["PHONE"] == [{"VALUE": "+77011112233", "VALUE_TYPE": "MOBILE"}]
    assert lead["SOURCE_ID"] == "WHATSAPP" and "test rule" in lead["COMMENTS"]
    async with crm_db() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == "77011112233"))
    assert contact.crm_lead_id == lead["ID"]


async def test_without_a_crm_no_event_is_written(
    db, settings, broker, llm, knowledge, gemini_beside_sandbox, queues
):
    agent = make_agent(settings, db, broker, llm, knowledge)  # sessions as app.py makes them with no CRM set

    await handle(incoming("Сколько стоит СкладПро?", phone="77011112234", business="ТОО Бета"), agent)

    assert await events(db) == []


async def test_a_receiver_down_for_a_while_gets_every_event_once_and_in_order(
    engine, db, sandbox, sandbox_url
):
    sessions = recording(engine, (WEBHOOK,))
    first = await classify(sessions, "77012220001", True)
    await classify(sessions, "77012220002", False)
    await classify(sessions, "77012220001", None)  # no longer sure: no event
    await classify(sessions, "77012220001", False)
    await book_call(sessions, first, datetime(2026, 11, 26, 6, 0, tzinfo=UTC))
    recorded = [str(e.event_id) for e in await events(sessions)]
    assert len(recorded) == 4
    # The receiver answers 503 to the next 9 requests, then takes everything again.
    await sandbox.post("/sandbox/faults", json={"endpoint": "crm_events", "status": 503, "count": 9})

    deps = crm_deps(sandbox_url, sessions)
    await deliver_all(deps)
    await deps.aclose()

    got = await received(sandbox)
    assert sorted(e["body"]["event_id"] for e in got) == sorted(recorded)
    assert all(signed_correctly(e) for e in got)
    of_first = [e["body"]["type"] for e in got if e["body"]["contact"]["phone"] == "+77012220001"]
    assert of_first == ["contact.classified", "contact.classified", "call.booked"]
    assert (await sandbox.get("/sandbox/stats")).json()["calls"]["crm_events"] == 9 + 4
    assert all(e.delivered_at is not None and e.attempts >= 1 for e in await events(sessions))
    assert max(e.attempts for e in await events(sessions)) > 1


async def test_an_event_the_receiver_took_is_never_sent_again_not_even_by_a_new_worker(
    crm, crm_db, sandbox, sandbox_url
):
    await classify(crm_db, "77013330001", True)
    await deliver_all(crm)

    restarted = crm_deps(sandbox_url, crm_db)
    assert await deliver_due(restarted) == 0
    await restarted.aclose()
    assert len(await received(sandbox)) == 1


async def test_an_event_claimed_by_a_worker_that_died_is_sent_once_after_its_claim_expires(
    engine, db, sandbox, sandbox_url
):
    sessions = recording(engine, (WEBHOOK,))
    await classify(sessions, "77013330002", True)
    dead = crm_deps(sandbox_url, sessions, claim_for=timedelta(seconds=1))
    assert len(await claim_due(dead)) == 1  # ... and the worker dies before it sends
    await dead.aclose()

    survivor = crm_deps(sandbox_url, sessions)
    assert await deliver_due(survivor) == 0  # the claim still holds
    await asyncio.sleep(1.1)
    await deliver_all(survivor)
    await survivor.aclose()

    assert len(await received(sandbox)) == 1


async def test_bitrix24_keeps_one_lead_per_client_however_often_it_is_classified(crm, crm_db, sandbox):
    # A lead a manager already typed in for one of the numbers is found by phone, not doubled.
    (
        await crm.bitrix24.call(
            "crm.lead.add", {"fields": {"TITLE": "Звонил сам", "PHONE": [{"VALUE": "+77014440002"}]}}
        )
    )
    await classify(crm_db, "77014440001", True)
    await classify(crm_db, "77014440002", True)
    await classify(crm_db, "77014440003", False)  # not a client: no lead
    await deliver_all(crm)
    for verdict in (None, True, False, True):  # reclassified back and forth
        await classify(crm_db, "77014440001", verdict)
    async with crm_db.begin() as session:  # the kept lead id lost, as if the worker died before keeping it
        await session.execute(update(Contact).values(crm_lead_id=None))
    await classify(crm_db, "77014440002", False)
    await classify(crm_db, "77014440002", True)
    await deliver_all(crm)

    leads = (await portal(sandbox))["leads"]
    phones = sorted(lead["PHONE"][0]["VALUE"] for lead in leads)
    assert phones == ["+77014440001", "+77014440002"]
    async with crm_db() as session:
        kept = dict((await session.execute(select(Contact.phone_number, Contact.crm_lead_id))).all())
    assert kept == {
        "77014440001": next(lead["ID"] for lead in leads if lead["PHONE"][0]["VALUE"] == "+77014440001"),
        "77014440002": next(lead["ID"] for lead in leads if lead["TITLE"] == "Звонил сам"),
        "77014440003": None,
    }


async def test_a_booked_call_becomes_a_call_on_the_clients_lead(crm, crm_db, sandbox):
    contact_id = await classify(crm_db, "77015550001", True)
    await book_call(crm_db, contact_id, datetime(2026, 11, 26, 6, 0, tzinfo=UTC))  # 11:00 in Astana
    await deliver_all(crm)

    shown = await portal(sandbox)
    [lead] = shown["leads"]
    [call] = shown["activities"]
    assert (call["OWNER_TYPE_ID"], call["OWNER_ID"], call["TYPE_ID"]) == (1, lead["ID"], 2)
    assert (call["START_TIME"], call["END_TIME"]) == (
        "2026-11-26T11:00:00+05:00",
        "2026-11-26T11:30:00+05:00",
    )
    assert call["COMMUNICATIONS"][0]["VALUE"] == "+77015550001"
    assert "Айгуль" in call["DESCRIPTION"] and "RESPONSIBLE_ID" not in call
    [booked] = [e["body"] for e in await received(sandbox) if e["body"]["type"] == "call.booked"]
    assert booked["data"]["scheduled_at"] == "2026-11-26T11:00:00+05:00"
    assert booked["data"]["manager"] == {"name": "Айгуль", "phone": "+77010000001"}


async def test_a_call_booked_before_the_lead_existed_adds_the_lead_first(engine, db, sandbox, sandbox_url):
    sessions = recording(engine, (BITRIX24,))
    async with sessions.begin() as session:
        contact = Contact(phone_number="77015550002", name="Дана")
        session.add(contact)
        await session.flush()
    await book_call(sessions, contact.id, datetime(2026, 11, 27, 5, 30, tzinfo=UTC))
    deps = crm_deps(sandbox_url, sessions)
    await deliver_all(deps)
    await deps.aclose()

    shown = await portal(sandbox)
    [lead] = shown["leads"]
    assert [call["OWNER_ID"] for call in shown["activities"]] == [lead["ID"]]


async def test_bitrix24s_request_limit_is_ridden_out(engine, db, sandbox, sandbox_url):
    sessions = recording(engine, (BITRIX24,))
    for n in range(30):  # two requests each, beyond the portal's burst of 50
        await classify(sessions, f"770166600{n:02d}", True)
    deps = crm_deps(sandbox_url, sessions)
    await deliver_all(deps, timeout_s=60)
    await deps.aclose()

    assert len((await portal(sandbox))["leads"]) == 30
    rows = await events(sessions)
    assert all(row.parked_at is None for row in rows)
    # The portal did refuse some: more requests than the 60 that went through.
    assert (await sandbox.get("/sandbox/stats")).json()["calls"]["bitrix24"] > 60


async def test_a_refusal_retrying_cannot_fix_parks_the_event_and_holds_nothing_up(crm, crm_db, sandbox):
    refusal = {"error": "ACCESS_DENIED", "error_description": "REST is available only on commercial plans"}
    await sandbox.post(
        "/sandbox/faults",
        json={"endpoint": "bitrix24", "status": 401, "count": 1, "body": json.dumps(refusal)},
    )
    contact_id = await classify(crm_db, "77017770001", True)
    await book_call(crm_db, contact_id, datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    await deliver_all(crm)

    parked = [e for e in await events(crm_db) if e.parked_at is not None]
    assert [(e.target, e.event_type) for e in parked] == [(BITRIX24, "contact.classified")]
    assert "ACCESS_DENIED" in parked[0].last_error
    assert len((await portal(sandbox))["activities"]) == 1  # the call still went in, on a lead of its own
    async with crm_db() as session:
        assert await crm_backlog(session) == {"backlog": 0, "parked": 1, "oldest_pending_s": 0.0}


async def test_an_opt_out_is_one_event_however_often_the_client_asks(
    crm_db, settings, broker, llm, knowledge, gemini_beside_sandbox, queues, sandbox, sandbox_url, engine
):
    sessions = recording(engine, (WEBHOOK,))
    agent = make_agent(settings, sessions, broker, llm, knowledge)
    for text in ("Сколько стоит?", "Больше не пишите мне!", "Я же сказал: не пишите мне!"):
        await handle(incoming(text, phone="77018880001", business="ТОО Гамма"), agent)
    deps = crm_deps(sandbox_url, sessions)
    await deliver_all(deps)
    await deps.aclose()

    types = [e["body"]["type"] for e in await received(sandbox)]
    assert types == ["contact.classified", "contact.opted_out"]
    [opted] = [e["body"]["data"] for e in await received(sandbox) if e["body"]["type"] == "contact.opted_out"]
    assert opted["language"] == "ru" and datetime.fromisoformat(opted["opted_out_at"]).tzinfo is not None


async def test_a_call_booked_in_the_chat_then_moved_by_an_operator_is_booked_cancelled_booked(
    settings, broker, llm, knowledge, gemini_beside_sandbox, queues, sandbox, sandbox_url, engine
):
    sessions = recording(engine)
    agent = make_agent(settings, sessions, broker, llm, knowledge)
    gemini_beside_sandbox.sales = lambda prompt: {
        "reply": "Отлично!",
        "stance": "yes",
        "agreed_to_call": True,
        "proposed_call_time": "2026-11-26T11:00",
        "confirmed_call_time": True,
    }
    await handle(incoming("Давайте завтра в 11:00", phone="77019990001", business="ТОО Дельта"), agent)
    async with sessions.begin() as session:
        call_id = await session.scalar(select(ScheduledCall.id))
        moved = await move_scheduled_call(
            session,
            call_id,
            datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
            agent.clock(),
            agent.hours,
            agent.calls,
        )
    deps = crm_deps(sandbox_url, sessions)
    await deliver_all(deps)
    await deps.aclose()

    calls = [e["body"] for e in await received(sandbox) if e["body"]["type"].startswith("call.")]
    assert [(c["type"], c["data"]["scheduled_at"]) for c in calls] == [
        ("call.booked", "2026-11-26T11:00:00+05:00"),
        ("call.cancelled", "2026-11-26T11:00:00+05:00"),
        ("call.booked", "2026-11-27T15:00:00+05:00"),
    ]
    assert calls[1]["data"]["reason"] == "перенесён оператором на 27.11.2026 в 15:00 (пятница)"
    assert calls[2]["data"]["call_id"] == moved.call.id
    shown = await portal(sandbox)
    assert len(shown["leads"]) == 1 and len(shown["activities"]) == 2
    [comment] = shown["comments"]
    assert comment["COMMENT"].startswith(
        "Звонок 26.11.2026 11:00 (Asia/Almaty) отменён: перенесён оператором"
    )
