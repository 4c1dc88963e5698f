"""The fake Wappi pushes chat messages to a registered webhook (dropping a share on request), and a contact
with an auto-responder answers every bot message by itself."""

import asyncio
import json

import respx
from httpx import Response

HOOK = "http://gateway.test/webhooks/wappi/secret"


async def settle(app) -> None:
    """Until the pushes and answers the last requests started have been carried out."""
    await asyncio.gather(*app.state.background.tasks)


async def test_a_customer_message_and_a_delivery_tick_are_pushed_to_the_webhook(app, client, wappi):
    with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=Response(200))
        await client.post("/sandbox/webhook", json={"url": HOOK})
        written = (
            await client.post("/sandbox/messages", json={"phone": "77011234567", "text": "Цена?"})
        ).json()
        await wappi.post("/api/sync/message/send", json={"recipient": "77011234567", "body": "15 000 ₸"})
        await settle(app)

    pushed = [call.request for call in hook.calls]
    first, second = (json.loads(r.content)["messages"][0] for r in pushed)
    assert (first["wh_type"], first["id"], first["body"]) == ("incoming_message", written["id"], "Цена?")
    assert (second["wh_type"], second["status"]) == ("messages_status", "delivered")
    assert (await client.get("/sandbox/webhook")).json()["webhook"]["pushed"] == 2


async def test_a_drop_rate_loses_that_share_of_pushes(app, client):
    with respx.mock(assert_all_called=False) as mock:
        hook = mock.post(HOOK).mock(return_value=Response(200))
        await client.post("/sandbox/webhook", json={"url": HOOK, "drop_rate": 0.5})
        for n in range(40):
            await client.post("/sandbox/messages", json={"phone": "77011234567", "text": f"сообщение {n}"})
        await settle(app)

    stats = (await client.get("/sandbox/webhook")).json()["webhook"]
    assert stats["pushed"] + stats["dropped"] == 40 and 8 < stats["dropped"] < 32
    assert hook.call_count == stats["pushed"]


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
