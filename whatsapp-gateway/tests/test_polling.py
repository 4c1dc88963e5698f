"""The poller against the sandbox: new customer messages reach incoming_messages once, nothing else does."""

import asyncio
import time

import pytest
from sqlalchemy import select, text

from models.message_log import MessageLog
from tests.conftest import CONTRACTS, collect, inject, running_gateway, wait_first_poll, without_amqp

pytestmark = pytest.mark.usefixtures("clean")
CUSTOMER = "77011234567"


async def test_a_customer_message_reaches_incoming_in_the_contract_format_exactly_once(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        sent = await inject(
            sandbox,
            phone=CUSTOMER,
            text="Здравствуйте, интересует ваш продукт",
            sender_name="Ivan",
            contact_name="Иван Петров",
            business_name="ООО Компания",
        )
        started = time.monotonic()
        found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=1.0)
        assert time.monotonic() - started < 2.5
    assert len(found) == 1
    body = without_amqp(found[0])
    assert CONTRACTS["incoming_messages"].errors(body) == []
    assert body == {
        "message_id": sent["id"],
        "chat_id": f"{CUSTOMER}@c.us",
        "phone_number": CUSTOMER,
        "sender_name": "Иван Петров",
        "message_text": "Здравствуйте, интересует ваш продукт",
        "is_voice": False,
        "voice_url": None,
        "timestamp": sent["timestamp"],
        "contact_info": {
            "FirstName": "Иван",
            "FullName": "Иван Петров",
            "PushName": "Ivan",
            "BusinessName": "ООО Компания",
        },
        "message_type": "text",
    }
    assert body["timestamp"].endswith("+05:00")
    assert found[0]["_amqp"].message_id == sent["id"]
    async with sessions() as session:
        row = await session.scalar(select(MessageLog).where(MessageLog.message_id == sent["id"]))
    assert (row.direction, row.queue_status, row.phone_number) == ("incoming", "published", CUSTOMER)


async def test_a_restarted_gateway_does_not_forward_a_message_again(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, text="первое")
        assert len(await collect(broker, queues.incoming, expect=1)) == 1
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM poll_state WHERE name = 'last_poll_time'"))
        await session.execute(text("DELETE FROM chat_cursors"))  # even with lost cursors: no duplicate
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, text="второе")
        found = await collect(broker, queues.incoming, expect=1, settle=1.0)
    assert [b["message_text"] for b in found] == ["второе"]


async def test_history_before_the_first_start_is_not_forwarded(settings, sessions, broker, queues, sandbox):
    old = int(time.time()) - 3600
    await inject(sandbox, phone=CUSTOMER, text="старое сообщение", time=old)
    await inject(sandbox, phone="77019998877", text="ещё старее", time=old - 60)
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, text="новое")
        found = await collect(broker, queues.incoming, expect=1, settle=1.0)
    assert [b["message_text"] for b in found] == ["новое"]


async def test_whitelisted_group_and_reaction_messages_are_never_forwarded(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone="77752837306", text="личное")
        await inject(sandbox, phone="77018855588", text="голосовое", type="ptt")
        await inject(sandbox, phone=CUSTOMER, text="в группе", group=True)
        await inject(sandbox, phone=CUSTOMER, text="👍", type="reaction")
        await inject(sandbox, phone=CUSTOMER, text="оператор пишет с телефона", from_me=True)
        await inject(sandbox, phone=CUSTOMER, text="клиент")
        found = await collect(broker, queues.incoming, expect=2, settle=1.5)
        voice = await collect(broker, f"{queues.voice}.dlq", expect=0, wait_s=0.2)
    # The operator's message goes to the agent as such (tests/test_operator_messages.py).
    assert [(b["message_text"], b.get("sender")) for b in found] == [
        ("оператор пишет с телефона", "operator"),
        ("клиент", None),
    ]
    assert voice == []
    async with sessions() as session:
        rows = (await session.scalars(select(MessageLog).order_by(MessageLog.id))).all()
    assert [(r.direction, r.message_text) for r in rows if r.direction != "skipped"] == [
        ("operator", "оператор пишет с телефона"),
        ("incoming", "клиент"),
    ]
    # Kept without their text, once each, for /stats; the own message is the operator's, not a skip.
    assert sorted((r.skip_reason, r.message_text) for r in rows if r.direction == "skipped") == [
        ("group", None),
        ("reaction", None),
        ("whitelisted", None),
        ("whitelisted", None),
    ]


async def test_a_chat_first_seen_after_the_start_is_forwarded(settings, sessions, broker, queues, sandbox):
    await inject(sandbox, phone=CUSTOMER, text="история", time=int(time.time()) - 600)
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await asyncio.sleep(0.5)
        await inject(sandbox, phone="77015550001", text="я новый клиент")
        await inject(sandbox, phone=CUSTOMER, text="и я снова тут")
        found = await collect(broker, queues.incoming, expect=2, settle=1.0)
    assert sorted((b["phone_number"], b["message_text"]) for b in found) == [
        ("77011234567", "и я снова тут"),
        ("77015550001", "я новый клиент"),
    ]


async def test_a_burst_in_one_second_is_forwarded_whole_and_in_order(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        for word in ("раз", "два", "три"):
            await inject(sandbox, phone=CUSTOMER, text=word)
            await asyncio.sleep(0.25)  # lands between poll cycles, often within one wall-clock second
        found = await collect(broker, queues.incoming, expect=3, settle=1.0)
    assert [b["message_text"] for b in found] == ["раз", "два", "три"]


async def test_images_are_forwarded_with_their_caption(settings, sessions, broker, queues, sandbox):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, type="image", caption="Такой нужен")
        await inject(sandbox, phone=CUSTOMER, type="document")
        found = await collect(broker, queues.incoming, expect=2, settle=0.5)
    assert [(b["message_type"], b["message_text"]) for b in found][0] == ("image", "Такой нужен")
    assert found[1]["message_type"] == "document" and found[1]["message_text"].startswith("[документ")


async def test_two_replicas_poll_one_at_a_time(settings, sessions, broker, queues, sandbox):
    async with running_gateway(settings), running_gateway(settings):
        await wait_first_poll(sessions)
        for n in range(3):
            await inject(sandbox, phone=f"7701555000{n}", text=f"клиент {n}")
        found = await collect(broker, queues.incoming, expect=3, settle=1.0)
        async with sessions() as session:
            holders = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
    assert sorted(b["message_text"] for b in found) == ["клиент 0", "клиент 1", "клиент 2"]
    assert holders == 1


async def test_many_chats_active_in_one_cycle_are_each_forwarded_once_in_the_order_written(
    settings, sessions, broker, queues, sandbox
):
    phones = [f"770155501{n:02d}" for n in range(40)]
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        for phone in phones:
            await inject(sandbox, phone=phone, text=f"вопрос от {phone}")
        found = await collect(broker, queues.incoming, expect=len(phones), wait_s=15, settle=1.0)
        async with sessions() as session:
            statuses = set(await session.scalars(select(MessageLog.queue_status)))
    assert [b["phone_number"] for b in found] == phones
    assert statuses == {"published"}


async def test_a_burst_of_new_chats_longer_than_the_paging_limit_is_forwarded_whole(
    settings, sessions, broker, queues, sandbox, monkeypatch
):
    from services import polling_service

    # 5 chats a page, 2 pages of late-arrival band: 25 new chats at once are far beyond that band.
    monkeypatch.setattr(polling_service, "CHAT_PAGE", 5)
    monkeypatch.setattr(polling_service, "MAX_CHAT_PAGES", 2)
    phones = [f"770155502{n:02d}" for n in range(25)]
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await asyncio.gather(*(inject(sandbox, phone=phone, text="много нас") for phone in phones))
        found = await collect(broker, queues.incoming, expect=len(phones), wait_s=10, settle=1.0)
    assert sorted(b["phone_number"] for b in found) == phones
