"""POST /sandbox/messages/batch: a load generator's many messages in one request, each written as if alone."""


async def test_a_batch_writes_each_message_in_order_as_single_injects_would(client, wappi):
    batch = [
        {"phone": "77011110001", "text": "Сколько стоит тариф Старт?"},
        {"phone": "77011110002", "text": "Есть пробный период?"},
        {"phone": "77011110001", "text": "И доставка есть?"},
    ]
    response = await client.post("/sandbox/messages/batch", json={"messages": batch})

    assert response.status_code == 200, response.text
    written = response.json()["messages"]
    assert [m["body"] for m in written] == [m["text"] for m in batch]
    assert len({m["id"] for m in written}) == 3
    chat = await wappi.get("/api/sync/messages/get", params={"chat_id": "77011110001@c.us", "order": "asc"})
    assert [m["body"] for m in chat.json()["messages"]] == ["Сколько стоит тариф Старт?", "И доставка есть?"]


async def test_an_empty_or_malformed_batch_is_refused_and_writes_nothing(client, wappi):
    assert (await client.post("/sandbox/messages/batch", json={"messages": []})).status_code == 422
    bad = {"messages": [{"phone": "77011110003", "text": "ok"}, {"phone": "77011110004", "type": "sticker"}]}
    assert (await client.post("/sandbox/messages/batch", json=bad)).status_code == 422
    dialogs = (await wappi.get("/api/sync/chats/get")).json()["dialogs"]
    assert not [d for d in dialogs if d["id"].startswith("7701111000")]
