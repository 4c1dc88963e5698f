"""The sender against the sandbox: reply or send, mark read, once per outgoing_id, never to the whitelist."""

import asyncio

import pytest
from sqlalchemy import func, select

from models.message_log import MessageLog
from services.sender_service import CLAIM_LEASE
from tests.conftest import ADMIN_KEY, collect, inject, sent_by_bot, settled_row

pytestmark = pytest.mark.usefixtures("gateway")
CUSTOMER = "77011234567"


async def calls(sandbox, endpoint: str) -> int:
    return (await sandbox.get("/sandbox/stats")).json()["calls"].get(endpoint, 0)


async def _row(sessions, outgoing_id: str) -> MessageLog | None:
    async with sessions() as session:
        return await session.scalar(select(MessageLog).where(MessageLog.outgoing_id == outgoing_id))


async def test_a_reply_is_sent_as_a_wappi_reply_and_the_message_is_marked_read(
    sandbox, publish, queues, sessions
):
    incoming = await inject(sandbox, phone=CUSTOMER, text="Сколько стоит?")
    await publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Добрый день! 😊",
            "reply_to_message_id": incoming["id"],
            "mark_as_read": True,
            "outgoing_id": "out-1",
            "sent_by": "reply",
        },
        message_id="out-1",
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["recipient"], m["body"], m["reply_to"]) for m in sent] == [
        ("reply", CUSTOMER, "Добрый день! 😊", incoming["id"])
    ]
    assert incoming["id"] in (await sandbox.get("/sandbox/read")).json()["message_ids"]
    row = await settled_row(sessions, "out-1")
    assert (row.direction, row.queue_status, row.wappi_message_id) == ("outgoing", "sent", sent[0]["id"])
    assert row.sent_by == "reply" and row.wappi_status == "done"


async def test_without_reply_to_it_is_a_plain_send(sandbox, publish, queues):
    await publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Напоминаю о нас",
            "outgoing_id": "out-2",
            "sent_by": "follow_up",
        },
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["recipient"], m["body"]) for m in sent] == [("send", CUSTOMER, "Напоминаю о нас")]
    assert (await sandbox.get("/sandbox/read")).json()["message_ids"] == []


async def test_the_same_outgoing_id_twice_is_sent_once(sandbox, publish, queues, sessions):
    body = {"phone_number": CUSTOMER, "message_text": "Один раз", "outgoing_id": "out-3"}
    await publish(queues.outgoing, body)
    await sent_by_bot(sandbox, 1)
    await publish(queues.outgoing, body)
    await asyncio.sleep(1.0)
    assert len(await sent_by_bot(sandbox, 2, wait_s=0.5)) == 1
    assert (await _row(sessions, "out-3")).attempts == 1


async def test_a_send_whose_outcome_was_never_recorded_is_found_in_the_chat_once_its_claim_expired(
    sandbox, publish, queues, sessions
):
    body = {"phone_number": CUSTOMER, "message_text": "Тариф Старт — 15 000 ₸", "outgoing_id": "out-crash"}
    await publish(queues.outgoing, body)
    [sent] = await sent_by_bot(sandbox, 1)
    await settled_row(sessions, "out-crash")
    # As a gateway killed between Wappi's answer and the commit leaves it, a lease ago: still "sending".
    async with sessions() as session, session.begin():
        row = await session.scalar(select(MessageLog).where(MessageLog.outgoing_id == "out-crash"))
        row.queue_status, row.wappi_message_id, row.processed_at = "sending", None, None
        row.claimed_at = row.turn_at = func.now() - CLAIM_LEASE

    await publish(queues.outgoing, body)  # the broker redelivers it after the restart

    row = await settled_row(sessions, "out-crash")
    assert (row.queue_status, row.wappi_message_id) == ("sent", sent["id"])
    assert len(await sent_by_bot(sandbox, 2, wait_s=0.5)) == 1


async def test_a_stale_claim_whose_message_is_not_in_the_chat_is_sent_once(
    sandbox, publish, queues, sessions
):
    body = {"phone_number": CUSTOMER, "message_text": "Не дошло", "outgoing_id": "out-stale"}
    # A worker claimed it a lease ago and died before Wappi got the request.
    async with sessions() as session, session.begin():
        session.add(
            MessageLog(
                outgoing_id="out-stale",
                chat_id=f"{CUSTOMER}@c.us",
                phone_number=CUSTOMER,
                direction="outgoing",
                message_text="Не дошло",
                queue_status="sending",
                claimed_at=func.now() - CLAIM_LEASE,
            )
        )

    await publish(queues.outgoing, body)

    assert [m["body"] for m in await sent_by_bot(sandbox, 1)] == ["Не дошло"]
    assert (await settled_row(sessions, "out-stale")).queue_status == "sent"
    assert await calls(sandbox, "messages/get") >= 1  # the chat was looked at first
    assert len(await sent_by_bot(sandbox, 2, wait_s=1.0)) == 1


async def test_a_redelivery_during_a_send_waits_and_does_not_send_twice(
    sandbox, publish, queues, sessions, broker
):
    await sandbox.post("/sandbox/faults", json={"endpoint": "message/send", "latency_ms": 1500, "count": 1})
    body = {"phone_number": CUSTOMER, "message_text": "Только один раз"}
    await publish(queues.outgoing, body, message_id="amqp-slow")
    await asyncio.sleep(0.5)  # the first delivery is waiting for Wappi's answer
    await publish(queues.outgoing, body, message_id="amqp-slow")  # the broker delivers it again

    await asyncio.sleep(3.0)  # the second delivery's retries outlast the send
    assert [m["body"] for m in await sent_by_bot(sandbox, 2, wait_s=0.5)] == ["Только один раз"]
    row = await settled_row(sessions, "amqp-slow")
    assert (row.queue_status, row.attempts) == ("sent", 1)
    assert await collect(broker, f"{queues.outgoing}.dlq", expect=0, wait_s=0.2) == []


async def test_a_whitelisted_recipient_is_refused_and_dead_lettered_with_the_reason(
    sandbox, publish, queues, broker, sessions
):
    await publish(
        queues.outgoing, {"phone_number": "77752837306", "message_text": "Привет", "outgoing_id": "out-4"}
    )
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert "77752837306 is whitelisted" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert (await sent_by_bot(sandbox, 1, wait_s=0.3)) == []
    assert (await _row(sessions, "out-4")).queue_status == "refused"


async def test_a_reply_to_an_unknown_message_still_reaches_the_customer(sandbox, publish, queues):
    await publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Ответ",
            "reply_to_message_id": "NO-SUCH-MESSAGE",
            "outgoing_id": "out-5",
        },
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["recipient"], m["body"]) for m in sent] == [("send", CUSTOMER, "Ответ")]


@pytest.mark.parametrize("status", [429, 500])
async def test_wappi_429_and_500_are_retried_and_the_message_goes_out(sandbox, publish, queues, status):
    await sandbox.post("/sandbox/faults", json={"endpoint": "message/send", "status": status, "count": 2})
    await publish(
        queues.outgoing,
        {"phone_number": CUSTOMER, "message_text": f"после {status}", "outgoing_id": f"out-{status}"},
    )
    sent = await sent_by_bot(sandbox, 1, wait_s=10)
    assert [m["body"] for m in sent] == [f"после {status}"]
    assert (await sandbox.get("/sandbox/stats")).json()["calls"]["message/send"] == 3


async def test_an_html_error_page_is_retried_later_and_recorded_as_a_clear_error(
    sandbox, publish, queues, sessions
):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    # More failures than the client retries: the message waits in the retry queue and goes out later.
    await sandbox.post(
        "/sandbox/faults", json={"endpoint": "message/send", "status": 502, "count": 4, "body": page}
    )
    await publish(
        queues.outgoing, {"phone_number": CUSTOMER, "message_text": "терпение", "outgoing_id": "out-html"}
    )
    sent = await sent_by_bot(sandbox, 1, wait_s=20)
    assert [m["body"] for m in sent] == ["терпение"]
    row = await settled_row(sessions, "out-html")
    assert row.attempts == 2 and row.queue_status == "sent"
    assert "non-JSON answer" in row.error and "502 Bad Gateway" in row.error


async def test_two_equal_manual_messages_are_both_sent(gateway, sandbox):
    _, client = gateway
    ids = []
    for _ in range(2):
        response = await client.post(
            "/test/send-message",
            headers={"X-API-Key": ADMIN_KEY},
            json={"phone_number": CUSTOMER, "message_text": "Спасибо!"},
        )
        ids.append(response.json()["outgoing_id"])
    sent = await sent_by_bot(sandbox, 2)
    assert [m["body"] for m in sent] == ["Спасибо!", "Спасибо!"]
    assert len(set(ids)) == 2 and all(ids)


async def test_without_outgoing_id_the_amqp_message_id_is_the_idempotency_key(sandbox, publish, queues):
    body = {"phone_number": CUSTOMER, "message_text": "Спасибо!"}
    await publish(queues.outgoing, body, message_id="amqp-1")
    await publish(queues.outgoing, body, message_id="amqp-1")  # a redelivery
    await publish(queues.outgoing, body, message_id="amqp-2")  # the same words, another message
    await asyncio.sleep(1.0)
    assert [m["body"] for m in await sent_by_bot(sandbox, 3, wait_s=0.5)] == ["Спасибо!", "Спасибо!"]


async def test_a_number_that_is_not_a_persons_is_refused_and_dead_lettered(sandbox, publish, queues, broker):
    channel = "120363025246125486"  # a channel's id, digits like a phone's
    await publish(
        queues.outgoing, {"phone_number": channel, "message_text": "Привет", "outgoing_id": "out-channel"}
    )
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert f"{channel} is not a person's phone number" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert await sent_by_bot(sandbox, 1, wait_s=0.3) == []


async def test_a_reply_to_a_group_message_goes_to_the_customer_as_a_new_message(sandbox, publish, queues):
    in_group = await inject(sandbox, phone=CUSTOMER, text="в группе", group=True)
    await publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Лично вам",
            "reply_to_message_id": in_group["id"],
            "mark_as_read": True,
            "outgoing_id": "out-group",
        },
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["chat_id"], m["body"]) for m in sent] == [("send", f"{CUSTOMER}@c.us", "Лично вам")]
    assert in_group["id"] not in (await sandbox.get("/sandbox/read")).json()["message_ids"]


async def test_a_reply_to_a_skipped_status_update_goes_to_the_customer_as_a_new_message(
    sandbox, publish, queues, sessions
):
    async with sessions() as session, session.begin():
        session.add(
            MessageLog(
                message_id="STATUS-1",
                chat_id="status@broadcast",
                direction="skipped",
                skip_reason="status_broadcast",
                queue_status="not_queued",
            )
        )
    await publish(
        queues.outgoing,
        {
            "phone_number": CUSTOMER,
            "message_text": "Про ваш статус",
            "reply_to_message_id": "STATUS-1",
            "mark_as_read": True,
            "outgoing_id": "out-status",
        },
    )
    sent = await sent_by_bot(sandbox, 1)
    assert [(m["kind"], m["recipient"]) for m in sent] == [("send", CUSTOMER)]
    assert (await sandbox.get("/sandbox/read")).json()["message_ids"] == []
