"""The fake Bitrix24 answers its REST methods as the portal does (results, errors, the request limit), and
the event receiver keeps what it was sent; both fail on request."""

import time

from sandbox.crm_portal import BURST

HOOK = "/rest/1/s3cr3t"
LEAD = {"fields": {"TITLE": "WhatsApp: ТОО Альфа", "NAME": "Айгерим", "PHONE": [{"VALUE": "+77011234567"}]}}


async def test_a_lead_is_added_and_found_by_phone(client):
    added = (await client.post(f"{HOOK}/crm.lead.add.json", json=LEAD)).json()
    found = (
        await client.post(
            f"{HOOK}/crm.duplicate.findbycomm.json", json={"type": "PHONE", "values": ["77011234567"]}
        )
    ).json()
    missing = (
        await client.post(
            f"{HOOK}/crm.duplicate.findbycomm", json={"type": "PHONE", "values": ["77019999999"]}
        )
    ).json()

    assert isinstance(added["result"], int) and "duration" in added["time"]
    assert found["result"] == {"LEAD": [added["result"]]}
    assert missing["result"] == []


async def test_a_call_activity_needs_its_lead_and_its_communications(client):
    lead_id = (await client.post(f"{HOOK}/crm.lead.add.json", json=LEAD)).json()["result"]
    activity = {
        "OWNER_TYPE_ID": 1,
        "OWNER_ID": lead_id,
        "TYPE_ID": 2,
        "SUBJECT": "Созвон с клиентом",
        "COMMUNICATIONS": [{"VALUE": "+77011234567"}],
        "START_TIME": "2026-12-09T11:00:00+05:00",
    }

    added = await client.post(f"{HOOK}/crm.activity.add.json", json={"fields": activity})
    no_lead = await client.post(
        f"{HOOK}/crm.activity.add.json", json={"fields": {**activity, "OWNER_ID": 999}}
    )
    no_phone = await client.post(
        f"{HOOK}/crm.activity.add.json", json={"fields": {**activity, "COMMUNICATIONS": []}}
    )

    assert added.status_code == 200
    assert no_lead.json() == {"error": "", "error_description": "Owner element is not found."}
    assert no_phone.json()["error_description"] == "The field COMMUNICATIONS is not defined or invalid."
    [stored] = (await client.get("/sandbox/bitrix24")).json()["activities"]
    assert stored["OWNER_ID"] == lead_id


async def test_a_timeline_comment_needs_an_existing_lead(client):
    lead_id = (await client.post(f"{HOOK}/crm.lead.add.json", json=LEAD)).json()["result"]
    comment = {"ENTITY_ID": lead_id, "ENTITY_TYPE": "lead", "COMMENT": "Звонок отменён"}

    added = await client.post(f"{HOOK}/crm.timeline.comment.add.json", json={"fields": comment})
    no_lead = await client.post(
        f"{HOOK}/crm.timeline.comment.add.json", json={"fields": {**comment, "ENTITY_ID": 999}}
    )

    assert isinstance(added.json()["result"], int)
    assert no_lead.status_code == 400 and no_lead.json()["error_description"] == "Entity not found."
    [stored] = (await client.get("/sandbox/bitrix24")).json()["comments"]
    assert (stored["ENTITY_ID"], stored["COMMENT"]) == (lead_id, "Звонок отменён")


async def test_past_the_burst_the_webhook_is_told_query_limit_exceeded(client, state):
    state.bitrix24.bucket, state.bitrix24.bucket_at = float(BURST), time.monotonic()

    answer = await client.post(f"{HOOK}/crm.lead.add.json", json=LEAD)

    assert answer.status_code == 503 and answer.json()["error"] == "QUERY_LIMIT_EXCEEDED"


async def test_an_unknown_method_and_a_missing_title_are_errors(client):
    assert (await client.post(f"{HOOK}/crm.nothing.json", json={})).json()[
        "error"
    ] == "ERROR_METHOD_NOT_FOUND"
    assert (await client.post(f"{HOOK}/crm.lead.add.json", json={"fields": {}})).status_code == 400


async def test_the_event_receiver_keeps_headers_and_body_and_fails_on_request(client):
    await client.post("/sandbox/faults", json={"endpoint": "crm_events", "status": 503, "count": 1})

    down = await client.post("/crm/events", json={"event": "call.booked"}, headers={"X-Event-Id": "e1"})
    up = await client.post("/crm/events", json={"event": "call.booked"}, headers={"X-Event-Id": "e1"})

    assert (down.status_code, up.status_code) == (503, 200)
    [event] = (await client.get("/sandbox/crm/events")).json()["events"]
    assert event["headers"]["x-event-id"] == "e1" and '"call.booked"' in event["body"]
