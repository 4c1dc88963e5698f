"""Chats that are not a person's dialog: Status updates, channel posts, hidden-number (@lid) chats."""

import re

import pytest
from conftest import load_sample

BUSINESS = "77000000000@c.us"


async def inject(client, **fields) -> dict:
    response = await client.post("/sandbox/messages", json=fields)
    assert response.status_code == 200, response.text
    return response.json()


async def chat_messages(wappi, chat_id: str) -> list[dict]:
    answer = await wappi.get("/api/sync/messages/get", params={"chat_id": chat_id, "order": "asc"})
    assert answer.status_code == 200
    return answer.json()["messages"]


async def dialogs(wappi) -> dict[str, dict]:
    return {d["id"]: d for d in (await wappi.get("/api/sync/chats/get")).json()["dialogs"]}


async def test_status_updates_of_two_contacts_share_the_status_broadcast_chat(client, wappi):
    await inject(client, chat="status", phone="77011112233", text="Мы открылись!", sender_name="Асель")
    await inject(client, chat="status", phone="77014445566", type="image", caption="Новинки")

    status_chat = (await dialogs(wappi))["status@broadcast"]
    assert status_chat["chat_type"] == "dialog" and status_chat["unread"] == 2
    first, second = await chat_messages(wappi, "status@broadcast")
    assert set(load_sample("incoming_dialog")) <= set(first)
    assert (first["chatId"], first["from"], first["to"]) == ("status@broadcast", "77011112233@c.us", BUSINESS)
    assert (first["body"], first["senderName"], first["is_me"]) == ("Мы открылись!", "Асель", False)
    assert (second["from"], second["type"], second["caption"]) == ("77014445566@c.us", "image", "Новинки")
    assert status_chat["last_message_data"]["id"] == second["id"]


async def test_a_channel_post_comes_from_the_newsletter_chat_itself(client, wappi):
    post = await inject(
        client,
        chat="channel",
        channel_id="120363025246125888@newsletter",
        channel_name="Новости рынка",
        text="Курс тенге сегодня",
    )
    assert post["chatId"] == post["from"] == "120363025246125888@newsletter"
    assert post["to"] == BUSINESS and post["contact_name"] == "Новости рынка"

    channel = (await dialogs(wappi))["120363025246125888@newsletter"]
    assert channel["name"] == "Новости рынка" and channel["unread"] == 1
    (listed,) = await chat_messages(wappi, "120363025246125888@newsletter")
    assert listed["body"] == "Курс тенге сегодня" and listed["whatsapp_chat_id"] == listed["chatId"]


async def test_a_channel_post_needs_no_phone_and_defaults_to_a_sandbox_channel(client):
    post = await inject(client, chat="channel", text="Пост")
    assert re.match(r"^\d+@newsletter$", post["chatId"])


async def test_a_hidden_number_chat_with_the_phone_known_shows_it_in_from_and_contact_phone(client, wappi):
    message = await inject(
        client, chat="lid", phone="77017778899", lid="123456789012345@lid", lid_with_phone=True, text="Цена?"
    )
    assert message["chatId"] == "123456789012345@lid"
    assert message["from"] == "77017778899@c.us" and message["contact_phone"] == "77017778899"

    (listed,) = await chat_messages(wappi, "123456789012345@lid")
    assert listed["id"] == message["id"] and listed["whatsapp_chat_id"] == "123456789012345@lid"
    assert (await dialogs(wappi))["123456789012345@lid"]["chat_type"] == "dialog"


async def test_a_hidden_number_chat_without_the_phone_has_only_the_lid(client, wappi):
    message = await inject(client, chat="lid", phone="77017778899", text="Здравствуйте", sender_name="Марат")
    assert re.match(r"^\d{15}@lid$", message["chatId"])
    assert message["from"] == message["chatId"] and message["contact_phone"] == ""
    assert "77017778899" not in str(await chat_messages(wappi, message["chatId"]))
    assert (await dialogs(wappi))[message["chatId"]]["name"] == "Марат"


async def test_sends_to_status_channel_and_lid_chats_are_refused_as_before(wappi):
    for recipient in ("status@broadcast", "120363025246125888@newsletter", "123456789012345@lid"):
        answer = await wappi.post("/api/sync/message/send", json={"recipient": recipient, "body": "Привет"})
        assert answer.status_code == 400 and answer.json()["status"] == "error"


async def test_group_still_works_both_ways(client):
    by_flag = await inject(client, phone="996706154254", text="Всем привет", group=True)
    by_kind = await inject(client, phone="996706154254", text="И снова", chat="group")
    assert by_flag["chatId"] == by_kind["chatId"] and by_kind["chat_type"] == "group"


@pytest.mark.parametrize(
    "fields",
    [
        {"chat": "status", "text": "без номера"},
        {"chat": "lid", "text": "без номера"},
        {"chat": "status", "phone": "77011112233", "group": True},
        {"chat": "channel", "channel_id": "12345@g.us"},
        {"chat": "lid", "phone": "77011112233", "lid": "12345@lid"},
        {"chat": "broadcast", "phone": "77011112233"},
    ],
)
async def test_inconsistent_chat_requests_are_rejected(client, fields):
    assert (await client.post("/sandbox/messages", json=fields)).status_code == 422
