import base64
import re

from conftest import PROFILE_ID, load_sample

HEX_ID = re.compile(r"^[0-9A-F]{32}$")
BUSINESS = "77000000000@c.us"


async def inject(client, **fields) -> dict:
    response = await client.post("/sandbox/messages", json=fields)
    assert response.status_code == 200, response.text
    return response.json()


async def test_injected_customer_message_shows_in_chats_and_messages_like_real_wappi(client, wappi):
    created = await inject(client, phone="77011234567", text="Добрый день", sender_name="Al")

    chats = (await wappi.get("/api/sync/chats/get")).json()
    assert chats["status"] == "done" and chats["total_count"] == 1
    dialog = chats["dialogs"][0]
    assert dialog["id"] == "77011234567@c.us"
    assert dialog["chat_type"] == "dialog"
    assert dialog["last_time"] == created["time"]
    assert dialog["unread"] == 1
    assert dialog["last_message_data"]["id"] == created["id"]

    messages = (await wappi.get("/api/sync/messages/get", params={"chat_id": "77011234567@c.us"})).json()
    assert messages["status"] == "done"
    message = messages["messages"][0]
    assert set(load_sample("incoming_dialog")) <= set(message)
    assert HEX_ID.match(message["id"])
    assert message["timestamp"] == "2026-06-23T15:00:00+05:00"
    assert message["time"] == 1782208800
    assert message["from"] == "77011234567@c.us" and message["to"] == BUSINESS
    assert message["chatId"] == "77011234567@c.us"
    assert (message["type"], message["body"], message["senderName"]) == ("chat", "Добрый день", "Al")
    assert message["is_me"] is False and message["chat_type"] == "dialog"
    assert message["profile_id"] == PROFILE_ID
    assert not message["whatsapp_chat_id"].startswith("77011234567")


async def test_voice_message_carries_ptt_fields_and_its_audio_downloads(client, wappi):
    created = await inject(client, phone="77015550000", type="ptt", transcript="Сколько стоит подключение?")
    message = (await wappi.get("/api/sync/messages/id/get", params={"message_id": created["id"]})).json()[
        "message"
    ]

    assert set(load_sample("voice_ptt")) <= set(message)
    assert message["type"] == "ptt" and message["mimetype"] == "audio/ogg; codecs=opus"
    assert message["file_link"] == f"http://sandbox.test/files/{message['file_name']}"
    assert message["length_seconds"] == 4
    audio = (await wappi.get(message["file_link"])).content
    assert audio.startswith(b"OggS")
    assert "SANDBOX-TRANSCRIPT:Сколько стоит подключение?".encode() in audio
    assert base64.b64decode(message["body"]) == audio
    download = (
        await wappi.get("/api/sync/message/media/download", params={"message_id": created["id"]})
    ).json()
    assert download["status"] == "done" and download["mime_type"] == "audio/ogg; codecs=opus"
    assert base64.b64decode(download["file_data"]) == audio


async def test_corrupt_voice_message_has_no_transcript_marker(client):
    created = await inject(client, phone="77015550000", type="ptt", corrupt_audio=True)
    audio = (await client.get(created["file_link"])).content
    assert b"SANDBOX-TRANSCRIPT:" not in audio and not audio.startswith(b"OggS")


async def test_image_and_document_messages_have_caption_and_file_link(client):
    image = await inject(client, phone="77015550001", type="image", caption="Вот наш склад")
    document = await inject(client, phone="77015550001", type="document", text="ТЗ на поставку")
    assert image["caption"] == "Вот наш склад" and image["mimetype"] == "image/jpeg"
    assert document["caption"] == "ТЗ на поставку" and document["mimetype"] == "application/pdf"
    for message in (image, document):
        assert (await client.get(message["file_link"])).status_code == 200


async def test_group_message_is_a_group_chat_with_the_sender_as_from(client, wappi):
    await inject(client, phone="996706154254", text="Всем привет", group=True, sender_name="Rufina")
    reaction = await inject(client, phone="996706154254", text="👍🏻", type="reaction", group=True)

    dialog = (await wappi.get("/api/sync/chats/get")).json()["dialogs"][0]
    assert dialog["chat_type"] == "group"
    assert re.match(r"^\d+-\d+@g\.us$", dialog["id"])
    assert set(load_sample("group_reaction")) <= set(reaction)
    assert reaction["type"] == "reaction" and reaction["chat_type"] == "group"
    assert reaction["from"] == "996706154254@c.us" and reaction["chatId"] == dialog["id"]


async def test_operator_typing_on_the_business_phone_is_an_is_me_message(client):
    await inject(client, phone="77011234567", text="Здравствуйте")
    operator = await inject(client, phone="77011234567", text="Добрый день, я менеджер", from_me=True)
    assert operator["is_me"] is True
    assert operator["from"] == BUSINESS and operator["to"] == "77011234567@c.us"
    assert (await client.get("/sandbox/sent")).json()["messages"] == []


async def test_send_to_a_new_number_creates_the_chat_records_it_and_echoes_is_me(client, wappi):
    answer = await wappi.post(
        "/api/sync/message/send", json={"recipient": "77019998877", "body": "Здравствуйте!"}
    )
    assert answer.status_code == 200
    sent = answer.json()
    assert sent["status"] == "done" and HEX_ID.match(sent["message_id"])

    records = (await client.get("/sandbox/sent")).json()["messages"]
    assert records == [
        {
            "id": sent["message_id"],
            "kind": "send",
            "recipient": "77019998877",
            "chat_id": "77019998877@c.us",
            "body": "Здравствуйте!",
            "reply_to": None,
            "time": sent["time"],
        }
    ]
    echo = (await wappi.get("/api/sync/messages/get", params={"chat_id": "77019998877@c.us"})).json()[
        "messages"
    ]
    assert len(echo) == 1
    assert set(load_sample("own_echo")) <= set(echo[0])
    assert echo[0]["id"] == sent["message_id"] and echo[0]["is_me"] is True
    assert echo[0]["from"] == BUSINESS and echo[0]["to"] == "77019998877@c.us"
    dialog = (await wappi.get("/api/sync/chats/get")).json()["dialogs"][0]
    assert dialog["last_time"] == sent["time"] and dialog["last_message_data"]["is_me"] is True


async def test_reply_and_mark_read_are_recorded_and_the_reply_is_echoed(client, wappi):
    question = await inject(client, phone="77011234567", text="Сколько стоит?")
    reply = await wappi.post(
        "/api/sync/message/reply", json={"body": "Стоимость от 50 000 ₸", "message_id": question["id"]}
    )
    assert reply.status_code == 200
    read = await wappi.post("/api/sync/message/mark/read", json={"message_id": question["id"]})
    assert read.json() == {"status": "done"}

    record = (await client.get("/sandbox/sent")).json()["messages"][0]
    assert (record["kind"], record["reply_to"], record["recipient"]) == (
        "reply",
        question["id"],
        "77011234567",
    )
    assert (await client.get("/sandbox/read")).json() == {"message_ids": [question["id"]]}
    chat = (await client.get("/sandbox/chats/77011234567")).json()
    assert [m["body"] for m in chat["messages"]] == ["Сколько стоит?", "Стоимость от 50 000 ₸"]
    echo = chat["messages"][1]
    assert echo["is_me"] is True and echo["isReply"] is True and echo["stanza_id"] == question["id"]
    assert (await wappi.get("/api/sync/chats/get")).json()["dialogs"][0]["unread"] == 0


async def test_reply_to_an_unknown_message_is_a_wappi_error(wappi):
    answer = await wappi.post("/api/sync/message/reply", json={"body": "Привет", "message_id": "NOPE"})
    assert answer.status_code == 400
    assert answer.json()["status"] == "error" and "NOPE" in answer.json()["detail"]


async def test_calls_without_token_or_profile_id_are_rejected(client):
    no_token = await client.get("/api/sync/chats/get", params={"profile_id": PROFILE_ID})
    assert no_token.status_code == 401 and no_token.json()["status"] == "error"
    no_profile = await client.get("/api/sync/chats/get", headers={"Authorization": "t"})
    assert no_profile.status_code == 400 and no_profile.json()["status"] == "error"


async def test_profile_status_is_authorized(wappi):
    status = (await wappi.get("/api/sync/get/status")).json()
    assert status["status"] == "done" and status["app_status"] == "open" and status["authorized"] is True


async def test_messages_come_newest_first_and_honour_limit_offset_order(client, wappi):
    for minute, text in enumerate(["раз", "два", "три"]):
        await inject(client, phone="77011234567", text=text, time=1782200000 + minute * 60)
    chat = {"chat_id": "77011234567@c.us"}

    async def bodies(**params):
        answer = await wappi.get("/api/sync/messages/get", params={**chat, **params})
        return [m["body"] for m in answer.json()["messages"]]

    assert await bodies() == ["три", "два", "раз"]
    assert await bodies(order="asc") == ["раз", "два", "три"]
    assert await bodies(limit=1, offset=1) == ["два"]
    assert [m["body"] for m in (await client.get("/sandbox/chats/77011234567")).json()["messages"]] == [
        "раз",
        "два",
        "три",
    ]


async def test_chats_are_listed_by_their_last_message_newest_first(client, wappi):
    await inject(client, phone="77010000001", text="старый", time=1782100000)
    await inject(client, phone="77010000002", text="новый", time=1782200000)
    await inject(client, phone="77010000003", text="средний", time=1782150000)

    listing = (await wappi.get("/api/sync/chats/get", params={"limit": 2})).json()
    assert [d["id"] for d in listing["dialogs"]] == ["77010000002@c.us", "77010000003@c.us"]
    assert listing["total_count"] == 3
    assert [d["last_time"] for d in listing["dialogs"]] == [1782200000, 1782150000]

    # A listing read after a new message sees it: the oldest chat is now the newest.
    await inject(client, phone="77010000001", text="ещё вопрос", time=1782300000)
    listing = (await wappi.get("/api/sync/chats/get", params={"limit": 3})).json()
    newest_first = ["77010000001@c.us", "77010000002@c.us", "77010000003@c.us"]
    assert [d["id"] for d in listing["dialogs"]] == newest_first


async def test_contact_and_business_names_reach_the_message(client):
    message = await inject(
        client,
        phone="77011234567",
        text="Нужен прайс",
        contact_name="Иван Стройком",
        business_name="ТОО Стройком",
    )
    assert message["contact_name"] == "Иван Стройком"
    assert message["business_name"] == "ТОО Стройком"


async def test_a_recorded_voice_note_keeps_its_audio_and_carries_what_was_said(client):
    recorded = b"\x1aE\xdf\xa3webm-opus-recording"
    created = await inject(
        client,
        phone="77015550000",
        type="ptt",
        audio_base64=base64.b64encode(recorded).decode(),
        transcript="Хочу узнать цену",
    )
    audio = (await client.get(created["file_link"])).content
    refused = await client.post(
        "/sandbox/messages", json={"phone": "77015550000", "type": "ptt", "audio_base64": "не base64"}
    )

    assert audio == recorded + "SANDBOX-TRANSCRIPT:Хочу узнать цену".encode()
    assert refused.status_code == 422
