"""Human takeover, the gateway's half: what the owner or a manager types on the business phone in a client's
chat reaches incoming_messages as the operator's; the bot's own sends never do, not even when a poll reads
their echo before the sender recorded its Wappi id."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from models.message_log import MessageLog
from service_kit.clock import utc_now
from service_kit.consumer import Delivery
from services.outbox import MessageLogOutbox
from services.polling_service import PollerDeps, poll_once
from services.queue_bodies import OutgoingMessage
from services.sender_service import SenderDeps, handle_outgoing
from services.wappi_client import WappiClient
from services.wappi_models import SendResult
from tests.conftest import (
    CONTRACTS,
    WAPPI_TOKEN,
    collect,
    inject,
    running_gateway,
    sent_by_bot,
    settled_row,
    wait_first_poll,
    without_amqp,
)
from utils.metrics import GatewayMetrics

pytestmark = pytest.mark.usefixtures("clean")
CUSTOMER = "77011234567"
PERSONAL = "77752837306"  # seeded in the whitelist


async def rows(sessions) -> list[MessageLog]:
    async with sessions() as session:
        return list((await session.scalars(select(MessageLog).order_by(MessageLog.id))).all())


async def test_a_message_typed_on_the_business_phone_reaches_incoming_as_the_operators(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        client = await inject(sandbox, phone=CUSTOMER, text="Сколько стоит?", sender_name="Иван")
        typed = await inject(sandbox, phone=CUSTOMER, text="Иван, это Айгерим, сейчас расскажу", from_me=True)
        photo = await inject(sandbox, phone=CUSTOMER, type="image", caption="Вот прайс", from_me=True)
        found = await collect(broker, queues.incoming, expect=3, settle=1.0)
    bodies = [without_amqp(b) for b in found]
    assert all(CONTRACTS["incoming_messages"].errors(b) == [] for b in bodies)
    assert [(b["message_id"], b.get("sender"), b["message_type"], b["message_text"]) for b in bodies] == [
        (client["id"], None, "text", "Сколько стоит?"),
        (typed["id"], "operator", "text", "Иван, это Айгерим, сейчас расскажу"),
        (photo["id"], "operator", "image", "Вот прайс"),
    ]
    # The client's chat, and nobody's name: the business's push name is not the client's.
    assert {(b["chat_id"], b["phone_number"]) for b in bodies} == {(f"{CUSTOMER}@c.us", CUSTOMER)}
    assert [(b["sender_name"], b["contact_info"]) for b in bodies[1:]] == [(None, None), (None, None)]
    assert [(r.direction, r.queue_status) for r in await rows(sessions)] == [
        ("incoming", "published"),
        ("operator", "published"),
        ("operator", "published"),
    ]


async def test_an_operators_voice_note_arrives_transcribed_as_the_operators(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        note = await inject(
            sandbox, phone=CUSTOMER, type="ptt", transcript="Перезвоню вам через час", from_me=True
        )
        found = await collect(broker, queues.incoming, expect=1, wait_s=10, settle=0.5)
    [body] = [without_amqp(b) for b in found]
    assert CONTRACTS["incoming_messages"].errors(body) == []
    assert (body["message_id"], body["sender"], body["is_voice"], body["message_text"]) == (
        note["id"],
        "operator",
        True,
        "[ТРАНСКРИБАЦИЯ] Перезвоню вам через час",
    )


async def test_the_bots_own_sends_are_never_forwarded(settings, sessions, broker, queues, sandbox, publish):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        for n, text in enumerate(["Добрый день!", "Тариф Старт — 15 000 ₸", "Добрый день!"]):
            await publish(
                queues.outgoing, {"phone_number": CUSTOMER, "message_text": text, "outgoing_id": f"bot-{n}"}
            )
        assert len(await sent_by_bot(sandbox, 3)) == 3
        await asyncio.sleep(1.0)  # five poll cycles read the echoes
        typed = await inject(sandbox, phone=CUSTOMER, text="Добрый день!", from_me=True)
        found = await collect(broker, queues.incoming, expect=1, settle=1.0)
    # The same words typed by a person afterwards are the operator's.
    assert [(b["message_id"], b["sender"]) for b in found] == [(typed["id"], "operator")]
    assert [r.direction for r in await rows(sessions)] == ["outgoing"] * 3 + ["operator"]


async def test_operator_messages_in_whitelisted_chats_and_groups_are_not_forwarded(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=PERSONAL, text="личное, с телефона", from_me=True)
        await inject(sandbox, phone=CUSTOMER, text="в группе, с телефона", group=True, from_me=True)
        await inject(sandbox, phone=CUSTOMER, text="клиент")
        found = await collect(broker, queues.incoming, expect=1, settle=1.5)
    assert [(b["message_text"], b.get("sender")) for b in found] == [("клиент", None)]
    assert [r.direction for r in await rows(sessions)] == ["incoming"]


@pytest.fixture
async def poller_and_sender(settings, sessions, publisher, topology) -> AsyncIterator[tuple[Any, SenderDeps]]:
    """The poller's and the sender's parts without their loops, so a test decides when each runs."""
    metrics = GatewayMetrics()
    wappi = WappiClient(
        base_url=settings.WAPPI_BASE_URL, token=WAPPI_TOKEN, profile_id="test-profile", metrics=metrics
    )
    poller = PollerDeps(
        wappi, sessions, publisher, MessageLogOutbox(topology, utc_now), metrics, settings.tz, utc_now
    )
    sender = SenderDeps(
        wappi=wappi,
        sessions=sessions,
        metrics=metrics,
        clock=utc_now,
        sends_per_minute=settings.MAX_SENDS_PER_MINUTE,
        manager_phones=settings.manager_phones,
    )
    await poll_once(poller)  # the first start: what comes next is new
    yield poller, sender
    await wappi.close()


async def test_an_echo_read_between_the_claim_and_the_recorded_id_is_not_forwarded(
    poller_and_sender, sessions, broker, queues, sandbox
):
    poller, sender = poller_and_sender
    seen_while_sending = []
    send_text = sender.wappi.send_text

    async def send_then_poll(recipient: str, body: str) -> SendResult:
        result = await send_text(recipient, body)  # Wappi sent it: its echo is in the chat
        async with sessions() as session:
            row = await session.scalar(select(MessageLog).where(MessageLog.outgoing_id == "race-1"))
            seen_while_sending.append((row.queue_status, row.wappi_message_id))
        await poll_once(poller)
        return result

    sender.wappi.send_text = send_then_poll
    body = OutgoingMessage(
        phone_number=CUSTOMER, message_text="Добрый день! Чем помочь?", outgoing_id="race-1"
    )
    await handle_outgoing(body, Delivery("race-1", 1, 5), deps=sender)
    await poll_once(poller)  # and once more after the record

    assert seen_while_sending == [("sending", None)]
    assert (await settled_row(sessions, "race-1")).queue_status == "sent"
    assert await collect(broker, queues.incoming, expect=1, wait_s=0.5) == []
    assert [r.direction for r in await rows(sessions)] == ["outgoing"]


async def test_an_echo_of_a_send_answered_without_an_id_is_not_forwarded_and_gives_the_row_its_id(
    poller_and_sender, sessions, broker, queues, sandbox
):
    poller, sender = poller_and_sender
    send_text = sender.wappi.send_text

    async def send_answered_without_id(recipient: str, body: str) -> SendResult:
        await send_text(recipient, body)
        return SendResult(message_id=None, status="done")

    sender.wappi.send_text = send_answered_without_id
    body = OutgoingMessage(phone_number=CUSTOMER, message_text="Записал вас", outgoing_id="no-id")
    await handle_outgoing(body, Delivery("no-id", 1, 5), deps=sender)
    [echo] = await sent_by_bot(sandbox, 1)
    await poll_once(poller)
    typed = await inject(sandbox, phone=CUSTOMER, text="Записал вас", from_me=True)
    await poll_once(poller)

    found = await collect(broker, queues.incoming, expect=1, settle=0.5)
    assert [(b["message_id"], b["sender"]) for b in found] == [(typed["id"], "operator")]
    row = await settled_row(sessions, "no-id")
    assert (row.queue_status, row.wappi_message_id) == ("sent", echo["id"])
