"""A whitelisted (personal) number never gets a message from the gateway, whatever path asks for one,
and whatever form the number is written in (`+7 701 123 45 67`, `8 701 123 45 67`, `77011234567@c.us`).

Covered elsewhere: the poller never forwards them (test_polling), the queue path is refused and
dead-lettered (test_sender), POST /test/send-message answers 403 (test_api). Here: every written form, and
the paths that name a customer but point into a whitelisted chat, through a reply or a read receipt."""

import asyncio

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from models.whitelist import Whitelist
from tests.conftest import ADMIN_KEY, collect, inject, sent_by_bot, settled_row, wait_first_poll
from utils.whatsapp_ids import normalize_phone

pytestmark = pytest.mark.usefixtures("gateway")
CUSTOMER = "77011234567"
PERSONAL = "77752837306"  # seeded in the whitelist
PERSONAL_FORMS = ["+7 775 283 73 06", "8 775 283 73 06", "8(775)283-73-06", "77752837306@c.us", "87752837306"]
KEY = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
async def added_in_trunk_form(sessions):
    """A number whitelisted as a person types it: 8 (701) 555-00-01."""
    async with sessions() as session, session.begin():
        session.add(Whitelist(phone_number="8 (701) 555-00-01", note="typed with the trunk prefix"))
    yield "77015550001"
    async with sessions() as session, session.begin():
        await session.execute(delete(Whitelist).where(Whitelist.phone_number == "77015550001"))


@pytest.mark.parametrize(
    "written",
    [
        "77011234567",
        "+7 701 123 45 67",
        "+7 (701) 123-45-67",
        "8 701 123 45 67",
        "8-701-123-45-67",
        "0077011234567",
        "77011234567@c.us",
        "77011234567:12@s.whatsapp.net",
    ],
)
def test_every_written_form_of_a_number_is_one_whitelist_entry(written):
    assert normalize_phone(written) == "77011234567"


@pytest.mark.parametrize(
    "chat_id", ["status@broadcast", "120363025246125486@newsletter", "185463918842095@lid"]
)
def test_an_id_that_is_not_a_persons_is_no_number(chat_id):
    assert normalize_phone(chat_id) == ""


async def test_an_entry_is_stored_in_its_normal_form_and_the_database_refuses_any_other(
    sessions, added_in_trunk_form
):
    async with sessions() as session:
        stored = await session.scalar(select(Whitelist.phone_number).where(Whitelist.note.like("typed%")))
    assert stored == added_in_trunk_form
    with pytest.raises(IntegrityError, match="ck_whitelist_normalized_phone"):
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO whitelist (phone_number) VALUES ('87015550002')"))


async def test_a_number_whitelisted_in_trunk_form_is_never_forwarded(
    gateway_at_midday, sessions, sandbox, broker, queues, added_in_trunk_form
):
    _, client = gateway_at_midday
    await wait_first_poll(sessions)
    await inject(sandbox, phone=added_in_trunk_form, text="это я, хозяин")
    await inject(sandbox, phone=CUSTOMER, text="клиент")
    found = await collect(broker, queues.incoming, expect=1, settle=1.0)
    for _ in range(100):
        skipped = (await client.get("/stats", headers=KEY)).json()["skipped_today"]
        if skipped["whitelisted"]:
            break
        await asyncio.sleep(0.05)
    assert [b["message_text"] for b in found] == ["клиент"]
    assert skipped["whitelisted"] == 1


@pytest.mark.parametrize("written", PERSONAL_FORMS)
async def test_the_manual_endpoint_refuses_a_whitelisted_number_in_any_form(gateway, written):
    _, client = gateway
    response = await client.post(
        "/test/send-message", headers=KEY, json={"phone_number": written, "message_text": "Тест"}
    )
    assert response.status_code == 403
    assert "whitelisted" in response.json()["detail"]


async def test_the_sender_refuses_a_whitelisted_number_written_with_the_trunk_prefix(
    sandbox, publish, queues, broker, sessions
):
    await publish(
        queues.outgoing, {"phone_number": "87752837306", "message_text": "Привет", "outgoing_id": "wl-trunk"}
    )
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert "87752837306 is whitelisted" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert await sent_by_bot(sandbox, 1, wait_s=0.3) == []
    assert (await settled_row(sessions, "wl-trunk")).queue_status == "refused"


async def _personal_chat_untouched(sandbox, personal_message_id: str) -> None:
    chat = (await sandbox.get(f"/sandbox/chats/{PERSONAL}")).json()["messages"]
    assert [m["is_me"] for m in chat] == [False]
    assert personal_message_id not in (await sandbox.get("/sandbox/read")).json()["message_ids"]


async def test_a_reply_to_a_message_of_a_whitelisted_chat_goes_to_the_customer_as_a_new_message(
    sandbox, publish, queues, sessions
):
    personal = await inject(sandbox, phone=PERSONAL, text="личное сообщение")
    await publish(
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
    sandbox, publish, queues, broker
):
    personal = await inject(sandbox, phone=PERSONAL, text="личное")
    await publish(
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
