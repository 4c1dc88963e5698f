"""The CRM clients on respx (what they send, which failures are worth another try), the backoff, the settings,
and the migration of crm_events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config.settings import Settings
from models import Base
from service_kit.errors import is_transient
from service_kit.settings import ConfigurationError, load_settings
from services.bitrix24_client import Bitrix24Client, Bitrix24Error, NewLead, PlannedCall
from services.bitrix24_sync import _comment
from services.crm_delivery import Backoff
from services.crm_events import CALL_CANCELLED, CONTACT_OPTED_OUT
from services.crm_webhook import CrmWebhookClient, WebhookNotTaken, signature

PORTAL = "https://portal.bitrix24.kz/rest/1/hook-secret-42/"
HOOK = "https://crm.example.kz/whatsapp-events"
REQUIRED = {
    "_env_file": None,
    "DATABASE_URL": "postgresql://agent@127.0.0.1/agent",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
    "GEMINI_API_KEY": "key",
    "ADMIN_API_KEY": "admin-key-long-enough-for-the-real-gemini",
    "BUSINESS_NAME": "ТОО «Ақ Жол Логистика»",
}


@pytest.fixture
async def bitrix24():
    client = Bitrix24Client(PORTAL, min_interval_s=0)
    yield client
    await client.aclose()


def answered(result) -> httpx.Response:
    return httpx.Response(200, json={"result": result, "time": {"start": 0, "finish": 0}})


@respx.mock
async def test_a_lead_is_added_with_the_phone_and_the_moderators_reasoning(bitrix24):
    route = respx.post(f"{PORTAL}crm.lead.add.json").mock(return_value=answered(17))

    lead_id = await bitrix24.add_lead(
        NewLead("WhatsApp: Иван (+77011234567)", "Иван", "+77011234567", "Спрашивает цены", None, "WHATSAPP")
    )

    assert lead_id == 17
    assert json.loads(route.calls.last.request.content) == {
        "fields": {
            "TITLE": "WhatsApp: Иван (+77011234567)",
            "NAME": "Иван",
            "PHONE": [{"VALUE": "+77011234567", "VALUE_TYPE": "MOBILE"}],
            "COMMENTS": "Спрашивает цены",
            "SOURCE_ID": "WHATSAPP",
        }
    }


@respx.mock
async def test_a_lead_is_found_by_phone_and_nothing_found_is_an_empty_list(bitrix24):
    route = respx.post(f"{PORTAL}crm.duplicate.findbycomm.json")
    route.mock(side_effect=[answered({"LEAD": [31, 12], "CONTACT": [5]}), answered([])])

    assert await bitrix24.find_leads_by_phone("+77011234567") == [12, 31]
    assert await bitrix24.find_leads_by_phone("+77019999999") == []
    assert json.loads(route.calls[0].request.content) == {"type": "PHONE", "values": ["+77011234567"]}


@respx.mock
async def test_a_booked_call_is_a_planned_outgoing_call_on_the_lead(bitrix24):
    route = respx.post(f"{PORTAL}crm.activity.add.json").mock(return_value=answered(90))
    starts = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)

    await bitrix24.add_call(
        PlannedCall(12, "Звонок: Иван", starts, starts.replace(minute=30), "+77011234567", "...", "ev-1")
    )

    fields = json.loads(route.calls.last.request.content)["fields"]
    assert {k: fields[k] for k in ("OWNER_TYPE_ID", "OWNER_ID", "TYPE_ID", "DIRECTION")} == {
        "OWNER_TYPE_ID": 1,
        "OWNER_ID": 12,
        "TYPE_ID": 2,
        "DIRECTION": 2,
    }
    assert (fields["START_TIME"], fields["END_TIME"]) == (
        "2026-11-26T06:00:00+00:00",
        "2026-11-26T06:30:00+00:00",
    )
    assert fields["COMMUNICATIONS"][0]["VALUE"] == "+77011234567"
    assert "RESPONSIBLE_ID" not in fields  # the portal's default responsible user takes it


@respx.mock
async def test_a_cancellation_and_an_opt_out_are_comments_on_the_leads_timeline(bitrix24):
    route = respx.post(f"{PORTAL}crm.timeline.comment.add.json").mock(return_value=answered(5))
    cancelled = {
        "scheduled_at": "2026-11-26T11:00:00+05:00",
        "timezone": "Asia/Almaty",
        "reason": "клиент занят",
    }

    await bitrix24.comment_lead(12, _comment(CALL_CANCELLED, cancelled))
    await bitrix24.comment_lead(
        12, _comment(CONTACT_OPTED_OUT, {"opted_out_at": "2026-11-26T06:00:00+00:00"})
    )

    sent = [json.loads(call.request.content)["fields"] for call in route.calls]
    assert sent[0] == {
        "ENTITY_ID": 12,
        "ENTITY_TYPE": "lead",
        "COMMENT": "Звонок 26.11.2026 11:00 (Asia/Almaty) отменён: клиент занят",
    }
    assert "больше не писать" in sent[1]["COMMENT"]


@pytest.mark.parametrize(
    ("response", "transient"),
    [
        (httpx.Response(503, json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many"}), True),
        (httpx.Response(500, json={"error": "INTERNAL_SERVER_ERROR", "error_description": "x"}), True),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), True),
        (
            httpx.Response(400, json={"error": "", "error_description": "The field TITLE is not defined"}),
            False,
        ),
        (
            httpx.Response(401, json={"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization"}),
            False,
        ),
        (
            httpx.Response(
                404, json={"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
            ),
            False,
        ),
    ],
)
@respx.mock
async def test_the_portals_failures_say_whether_waiting_helps(bitrix24, response, transient):
    respx.post(f"{PORTAL}crm.lead.add.json").mock(return_value=response)
    lead = NewLead("t", None, "+7", "c", None, "WHATSAPP")

    with pytest.raises(Bitrix24Error) as failure:
        await bitrix24.add_lead(lead)

    assert is_transient(failure.value) is transient
    assert "hook-secret-42" not in str(failure.value)


@respx.mock
async def test_the_request_limit_is_waited_out_in_place(bitrix24):
    limited = httpx.Response(
        503, json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    )
    route = respx.post(f"{PORTAL}crm.lead.add.json").mock(side_effect=[limited, answered(8)])

    assert await bitrix24.add_lead(NewLead("t", None, "+7", "c", None, "WHATSAPP")) == 8
    assert route.call_count == 2


@respx.mock
async def test_the_webhook_is_signed_over_the_exact_bytes_and_only_2xx_counts():
    route = respx.post(HOOK).mock(
        side_effect=[httpx.Response(204), httpx.Response(404), httpx.ConnectError("no")]
    )
    client = CrmWebhookClient(HOOK, "s3cret")
    body = {
        "event_id": "e-1",
        "type": "contact.opted_out",
        "occurred_at": "x",
        "contact": {},
        "data": {"ё": 1},
    }

    await client.send(body)
    for _ in range(2):
        with pytest.raises(WebhookNotTaken) as failure:
            await client.send(body)
        assert is_transient(failure.value)
    await client.aclose()

    request = route.calls[0].request
    assert request.headers["X-Event-Id"] == "e-1"
    assert request.headers["X-Signature"] == signature("s3cret", request.content)
    assert json.loads(request.content) == body


def test_the_backoff_doubles_up_to_a_few_minutes_and_never_gives_up():
    backoff = Backoff(first_s=5, cap_s=300)
    delays = [backoff.delay(attempt) for attempt in range(1, 2000)]
    assert 4 <= delays[0] <= 5 and 8 <= delays[1] <= 10
    assert all(0 < delay <= 300 for delay in delays)
    # An hour's outage is about a dozen attempts, the last ones minutes apart.
    assert sum(backoff.delay(n) for n in range(1, 13)) < 3600


def test_a_webhook_url_without_its_secret_is_one_clear_error():
    with pytest.raises(ConfigurationError) as failure:
        load_settings(Settings, **REQUIRED, CRM_WEBHOOK_URL=HOOK)
    assert failure.value.lines == ["Configuration error: CRM_WEBHOOK_SECRET is required"]


def test_the_crms_are_optional_and_the_bitrix24_url_is_a_secret():
    assert load_settings(Settings, **REQUIRED).crm_targets() == ()
    settings = load_settings(
        Settings, **REQUIRED, CRM_WEBHOOK_URL=HOOK, CRM_WEBHOOK_SECRET="s", BITRIX24_WEBHOOK_URL=PORTAL
    )
    assert settings.crm_targets() == ("webhook", "bitrix24")
    assert PORTAL in settings.secret_values() and "s" in settings.secret_values()
    assert PORTAL not in repr(settings)


async def test_the_migration_builds_crm_events_as_the_model_says(engine):
    def differences(connection):
        context = MigrationContext.configure(connection)
        return [
            diff
            for diff in compare_metadata(context, Base.metadata)
            if "crm" in repr(diff)  # the other tables are not this migration's
        ]

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
