"""A whitelisted (personal) number never gets a message from the gateway, whatever path asks for one.

Covered elsewhere: the poller never forwards them (test_polling), the queue path is refused and
dead-lettered (test_sender), POST /test/send-message answers 403 (test_api). Here: the paths that
name a customer but point into a whitelisted chat, through a reply or a read receipt."""

import pytest

from tests.conftest import ADMIN_KEY, collect, inject, sent_by_bot, settled_row

pytestmark = pytest.mark.usefixtures("gateway")
CUSTOMER = "77011234567"
PERSONAL = "77752837306"  # seeded in the whitelist


async def _personal_chat_untouched(sandbox, personal_message_id: str) -> None:
    chat = (await sandbox.get(f"/sandbox/chats/{PERSONAL}")).json()["messages"]
    assert [m["is_me"] for m in chat] == [False]
    assert personal_message_id not in (await sandbox.get("/sandbox/read")).json()["message_ids"]


async def test_a_reply_to_a_message_of_a_whitelisted_chat_goes_to_the_customer_as_a_new_message(
    sandbox, publisher, queues, sessions
):
    personal = await inject(sandbox, phone=PERSONAL, text="личное сообщение")
    await publisher.publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Ответ клиенту",
            "reply_to_message_id": personal["id"],
            "mark_as_read": True,
            "outgoing_id": "wl-reply",
        },
        message_id="wl-reply",
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["chat_id"], m["body"]) for m in sent] == [
        ("send", f"{CUSTOMER}@c.us", "Ответ клиенту")
    ]
    await _personal_chat_untouched(sandbox, personal["id"])
    assert (await settled_row(sessions, "wl-reply")).queue_status == "sent"


async def test_the_manual_endpoint_cannot_reach_a_whitelisted_chat_through_a_reply(
    gateway, sandbox, broker, queues
):
    _, client = gateway
    personal = await inject(sandbox, phone=PERSONAL, text="личное")
    response = await client.post(
        "/test/send-message",
        headers={"X-API-Key": ADMIN_KEY},
        json={
            "phone_number": CUSTOMER,
            "message_text": "Тест",
            "reply_to_message_id": personal["id"],
            "mark_as_read": True,
        },
    )
    assert response.status_code == 202
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["chat_id"]) for m in sent] == [("send", f"{CUSTOMER}@c.us")]
    await _personal_chat_untouched(sandbox, personal["id"])


async def test_a_whitelisted_recipient_is_refused_even_with_a_reply_to_its_own_chat(
    sandbox, publisher, queues, broker
):
    personal = await inject(sandbox, phone=PERSONAL, text="личное")
    await publisher.publish(
        queues.outgoing,
        {
            "phone_number": PERSONAL,
            "message_text": "Привет",
            "reply_to_message_id": personal["id"],
            "mark_as_read": True,
        },
    )
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert f"{PERSONAL} is whitelisted" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert await sent_by_bot(sandbox, 1, wait_s=0.3) == []
    await _personal_chat_untouched(sandbox, personal["id"])
