"""The fake Wappi pushes chat messages to a webhook registered as on real Wappi (or by the admin API, which
can drop a share of them), and a contact with an auto-responder answers every bot message by itself."""

import asyncio
import json

import respx
from conftest import PROFILE_ID
from httpx import Response

HOOK = "http://gateway.test/webhooks/wappi/secret"


async def settle(app) -> None:
    """Until the pushes and answers the last requests started have been carried out."""
    await asyncio.gather(*app.state.background.tasks)


async def test_every_message_of_a_chat_and_the_delivery_ticks_are_pushed_as_wappi_names_them(
    app, client, wappi
):
    with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=Response(200))
        await client.post("/sandbox/webhook", json={"url": HOOK})
        written = (
            await client.post("/sandbox/messages", json={"phone": "77011234567", "text": "Цена?"})
        ).json()
        await settle(app)
        sent = (
            await wappi.post("/api/sync/message/send", json={"recipient": "77011234567", "body": "15 000 ₸"})
        ).json()
        await settle(app)
        typed = (
            await client.post(
                "/sandbox/messages", json={"phone": "77011234567", "text": "Это Айгерим", "from_me": True}
            )
        ).json()
        await settle(app)

    pushed = [json.loads(call.request.content)["messages"][0] for call in hook.calls]
    assert [(m["wh_type"], m["id"], m.get("body"), m.get("is_me")) for m in pushed] == [
        ("incoming_message", written["id"], "Цена?", False),
        ("outgoing_message_api", sent["message_id"], "15 000 ₸", True),
        ("messages_status", sent["message_id"], None, None),
        ("outgoing_message_phone", typed["id"], "Это Айгерим", True),
    ]
    assert pushed[2]["status"] == "delivered"
    assert (await client.get("/sandbox/webhook")).json()["webhook"]["pushed"] == 4


async def test_a_webhook_registered_through_wappis_api_gets_the_types_asked_for(app, client, wappi):
    with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=Response(200))
        registered = await wappi.post("/api/webhook/url/set", params={"profile_id": PROFILE_ID, "url": HOOK})
        types = await wappi.post(
            "/api/webhook/types/set", json=["incoming_message", "outgoing_message_phone"]
        )
        await client.post("/sandbox/messages", json={"phone": "77011234567", "text": "Цена?"})
        await wappi.post("/api/sync/message/send", json={"recipient": "77011234567", "body": "15 000 ₸"})
        await client.post(
            "/sandbox/messages", json={"phone": "77011234567", "text": "Это я", "from_me": True}
        )
        await settle(app)

    assert registered.json()["status"] == "done" and types.json()["status"] == "done"
    pushed = [json.loads(call.request.content)["messages"][0] for call in hook.calls]
    assert [(m["wh_type"], m["body"]) for m in pushed] == [
        ("incoming_message", "Цена?"),
        ("outgoing_message_phone", "Это я"),
    ]


async def test_registering_a_webhook_needs_the_token_a_url_and_known_types(client, wappi):
    no_token = await client.post("/api/webhook/url/set", params={"profile_id": PROFILE_ID, "url": HOOK})
    no_url = await wappi.post("/api/webhook/url/set", params={"profile_id": PROFILE_ID, "url": "gateway"})
    no_hook_yet = await wappi.post("/api/webhook/types/set", json=["incoming_message"])
    await wappi.post("/api/webhook/url/set", params={"profile_id": PROFILE_ID, "url": HOOK})
    unknown = await wappi.post("/api/webhook/types/set", json=["everything"])

    assert no_token.status_code == 401
    assert (no_url.status_code, no_url.json()["detail"]) == (400, "url must be an http:// or https:// URL")
    assert no_hook_yet.status_code == 400
    assert unknown.status_code == 400 and "incoming_message" in unknown.json()["detail"]
    assert (await client.get("/sandbox/webhook")).json()["webhook"]["url"] == HOOK


async def test_a_drop_rate_loses_that_share_of_pushes_the_same_ones_for_the_same_seed(app, client):
    runs = []
    for _ in range(2):
        with respx.mock(assert_all_called=False) as mock:
            hook = mock.post(HOOK).mock(return_value=Response(200))
            await client.post("/sandbox/webhook", json={"url": HOOK, "drop_rate": 0.5, "seed": 3})
            for n in range(40):
                await client.post(
                    "/sandbox/messages", json={"phone": "77011234567", "text": f"сообщение {n}"}
                )
            await settle(app)
        stats = (await client.get("/sandbox/webhook")).json()["webhook"]
        assert stats["pushed"] + stats["dropped"] == 40 and 8 < stats["dropped"] < 32
        assert hook.call_count == stats["pushed"]
        runs.append(sorted(json.loads(c.request.content)["messages"][0]["body"] for c in hook.calls))
    assert runs[0] == runs[1]


async def test_an_auto_responder_answers_every_bot_message(app, client, wappi):
    await client.post(
        "/sandbox/autoresponders", json={"phone": "77015550000", "text": "Мы ответим позже", "delay_ms": 10}
    )

    for text in ("Здравствуйте!", "Чем могу помочь?"):
        await wappi.post("/api/sync/message/send", json={"recipient": "77015550000", "body": text})
        await settle(app)

    chat = (await client.get("/sandbox/chats/77015550000")).json()["messages"]
    assert [(m["is_me"], m["body"]) for m in chat] == [
        (True, "Здравствуйте!"),
        (False, "Мы ответим позже"),
        (True, "Чем могу помочь?"),
        (False, "Мы ответим позже"),
    ]
