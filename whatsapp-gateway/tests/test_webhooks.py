"""Webhook mode, the gateway's half: what Wappi pushes to POST /webhooks/wappi/{secret} is stored before it is
answered and takes the polled messages' path (person chats, whitelist, the operator and the bot's echoes,
voice notes, once per message id, through the outbox); a message both pushed and polled is forwarded once;
a wrong secret looks like no route at all; a malformed push is refused and nothing of it is kept."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from config.settings import Settings
from models.message_log import MessageLog
from models.poll_state import ChatCursor
from service_kit.clock import utc_now
from services.intake_limit import IntakeLimit
from services.leader_lease import LeaderLease
from services.outbox import MessageLogOutbox
from services.polling_service import PollerDeps, poll_once, run_poller
from services.wappi_client import WappiClient
from services.wappi_models import WappiMessage
from services.webhook_service import WebhookDeps, store_push, take_in_pushes
from tests.conftest import (
    ADMIN_KEY,
    CONTRACTS,
    WAPPI_TOKEN,
    collect,
    inject,
    running_gateway,
    sent_by_bot,
    wait_first_poll,
    without_amqp,
)
from utils.metrics import GatewayMetrics

pytestmark = pytest.mark.usefixtures("clean")
SECRET = "test-webhook-secret-4f0c9a7e1b2d3c5e6f"
HOOK = f"/webhooks/wappi/{SECRET}"
SAMPLES = Path(__file__).resolve().parent / "wappi_samples"  # copies of real Wappi payloads
CUSTOMER = "77011234567"
PERSONAL = "77752837306"  # seeded in the whitelist


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    return settings.model_copy(update={"WAPPI_WEBHOOK_SECRET": SecretStr(SECRET)})


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def written(phone: str, text: str, **fields: Any) -> dict[str, Any]:
    """A client's new message in their own chat, shaped like the sample of a real push."""
    now = int(time.time())
    return {
        **sample("incoming_dialog")["messages"][0],
        "id": uuid.uuid4().hex.upper(),
        "time": now,
        "timestamp": None,
        "body": text,
        "from": f"{phone}@c.us",
        "chatId": f"{phone}@c.us",
        **fields,
    }


def push(*messages: dict[str, Any], wh_type: str | None = None) -> dict[str, Any]:
    return {"messages": [m | {"wh_type": wh_type} if wh_type else m for m in messages]}


async def count(sessions, table: str) -> int:
    async with sessions() as session:
        return await session.scalar(text(f"SELECT count(*) FROM {table}"))


async def directions(sessions) -> list[tuple[str, str | None]]:
    async with sessions() as session:
        found = await session.execute(
            select(MessageLog.direction, MessageLog.skip_reason).order_by(MessageLog.id)
        )
        return [tuple(row) for row in found.all()]


async def test_a_pushed_message_reaches_incoming_at_once_in_the_contract_format(
    hooked, sessions, broker, queues
):
    async with running_gateway(hooked) as (_, client):
        await wait_first_poll(sessions)
        started = time.monotonic()
        answer = await client.post(HOOK, json=sample("incoming_dialog"))
        found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=1.0)
        took = time.monotonic() - started
    assert (answer.status_code, answer.json()) == (200, {"status": "ok", "messages": 1})
    assert len(found) == 1 and took < 2.0
    body = without_amqp(found[0])
    assert CONTRACTS["incoming_messages"].errors(body) == []
    assert body == {
        "message_id": "AC93B92A1A00E53B3B8DCA319090F90A",
        "chat_id": "996500494009@c.us",
        "phone_number": "996500494009",
        "sender_name": "Al",
        "message_text": "Добрый день",
        "is_voice": False,
        "voice_url": None,
        "timestamp": "2026-06-23T22:17:58+05:00",
        "contact_info": {"FirstName": "Al", "FullName": "Al", "PushName": "Al", "BusinessName": None},
        "message_type": "text",
    }
    async with sessions() as session:
        row = await session.scalar(select(MessageLog).where(MessageLog.message_id == body["message_id"]))
        polled = await session.scalar(select(func.count()).select_from(ChatCursor))
    assert (row.direction, row.queue_status) == ("incoming", "published")
    assert polled == 0  # no poll read it: the push did
    assert await count(sessions, "webhook_pushes") == 0  # taken in, and no longer kept


async def test_an_answered_push_is_already_stored(hooked, sessions):
    async with running_gateway(hooked) as (_, client):
        for n in range(5):
            message = written(CUSTOMER, f"вопрос {n}")
            assert (await client.post(HOOK, json=push(message))).status_code == 200
            # One statement, one snapshot: the push is in exactly one place, taken in or waiting for it.
            async with sessions() as session:
                places = await session.scalar(
                    text(
                        "SELECT (SELECT count(*) FROM webhook_pushes WHERE messages @> CAST(:held AS jsonb))"
                        " + (SELECT count(*) FROM message_logs WHERE message_id = :id)"
                    ),
                    {"held": json.dumps([{"id": message["id"]}]), "id": message["id"]},
                )
            assert places == 1


async def test_a_push_stored_before_a_stop_is_taken_in_at_the_next_start(hooked, sessions, broker, queues):
    message = written(CUSTOMER, "Успели сохранить до остановки?")
    await store_push(sessions, [WappiMessage.model_validate(message)], utc_now())
    async with running_gateway(hooked):
        found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=0.5)
    assert [b["message_id"] for b in found] == [message["id"]]
    assert await count(sessions, "webhook_pushes") == 0


async def test_delivery_ticks_and_other_events_are_acknowledged_and_ignored(hooked, sessions, broker, queues):
    profile = {"wh_type": "authorization_status", "profile_id": "2f099bc3-478d", "authorized": True}
    async with running_gateway(hooked) as (_, client):
        answers = [
            await client.post(HOOK, json=sample("delivery_status")),
            await client.post(HOOK, json={"messages": [profile]}),
            await client.post(HOOK, json=profile),  # a bare item
            await client.post(HOOK, json={"messages": []}),
        ]
        found = await collect(broker, queues.incoming, expect=1, wait_s=1.5)
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "ok", "messages": 0})] * 4
    assert found == []
    assert await count(sessions, "webhook_pushes") == 0 and await directions(sessions) == []


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "the body must be JSON"),
        (b"\xff\xfe", 400, "the body must be JSON"),
        (b"[]", 422, "the body must be a JSON object"),
        (b'{"hello": "world"}', 422, 'the body must hold "messages", a list of Wappi webhook items'),
        ('{"messages": "Добрый день"}'.encode(), 422, '"messages" must be a list of Wappi webhook items'),
        (b'{"messages": [1]}', 422, "messages[0] must be an object"),
        (b'{"messages": [{"wh_type": ["incoming_message"]}]}', 422, "messages[0].wh_type must be a string"),
        (
            b'{"messages": [{"wh_type": "incoming_message", "id": "A1", "body": "ok"},'
            b' {"wh_type": "incoming_message", "body": "no id"}]}',
            422,
            "messages[1] is not a readable message: id: Field required",
        ),
        (
            b'{"messages": [{"wh_type": "incoming_message", "id": "A2", "is_me": "maybe"}]}',
            422,
            "messages[0] is not a readable message: is_me: Input should be a valid boolean, unable to "
            "interpret input",
        ),
    ],
)
async def test_a_malformed_push_is_refused_with_the_reason_and_nothing_of_it_is_kept(
    hooked, sessions, broker, queues, body, status, detail
):
    async with running_gateway(hooked) as (_, client):
        answer = await client.post(HOOK, content=body, headers={"Content-Type": "application/json"})
        found = await collect(broker, queues.incoming, expect=1, wait_s=1.0)
    assert (answer.status_code, answer.json()) == (status, {"detail": detail})
    assert found == []
    assert await count(sessions, "webhook_pushes") == 0 and await directions(sessions) == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
async def test_a_wrong_secret_is_answered_as_a_path_that_does_not_exist(hooked, settings, method):
    guesses = [f"/webhooks/wappi/{SECRET[:-1]}", f"/webhooks/wappi/{SECRET}x", "/webhooks/wappi/secret"]
    async with running_gateway(hooked) as (_, client):
        nowhere = await client.request(method, "/no/such/path", json=push(written(CUSTOMER, "?")))
        wrong = [await client.request(method, path, json=push(written(CUSTOMER, "?"))) for path in guesses]
        # The right secret with another method than POST: only then is the route's existence plain.
        right = await client.request(method, HOOK, json={"messages": []})
    async with running_gateway(settings) as (_, client):  # no WAPPI_WEBHOOK_SECRET: webhook mode is off
        off = await client.request(method, HOOK, json=push(written(CUSTOMER, "?")))

    assert nowhere.status_code == 404
    for answer in [*wrong, off]:
        assert (answer.status_code, answer.json(), answer.headers["content-type"]) == (
            nowhere.status_code,
            nowhere.json(),
            nowhere.headers["content-type"],
        )
    assert right.status_code == (200 if method == "POST" else 405)


async def test_pushes_need_no_api_key_and_have_a_rate_limit_of_their_own(hooked, sessions):
    limited = hooked.model_copy(update={"RATE_LIMIT_PER_MINUTE": 2, "WAPPI_WEBHOOK_RATE_LIMIT_PER_MINUTE": 3})
    async with running_gateway(limited) as (_, client):
        pushes = [
            (await client.post(HOOK, json=push(written(CUSTOMER, f"{n}")))).status_code for n in range(4)
        ]
        guess = await client.post("/webhooks/wappi/guess", json={"messages": []})
        stats = [(await client.get("/stats", headers={"X-API-Key": ADMIN_KEY})).status_code for _ in range(3)]
    assert pushes == [200, 200, 200, 429]
    assert guess.status_code == 429  # guessing the secret is as slow as pushing
    assert stats == [200, 200, 429]  # the pushes took nothing from the admin's budget


async def test_pushed_messages_are_sorted_as_polled_ones(hooked, midday, sessions, broker, queues):
    client_text = written(CUSTOMER, "Сколько стоит тариф Старт?", senderName="Иван")
    operator = written(
        CUSTOMER, "Иван, это Айгерим, сейчас расскажу", is_me=True, **{"from": "77000000000@c.us"}
    )
    personal = written(PERSONAL, "личное")
    async with running_gateway(hooked, midday) as (_, client):
        await client.post(HOOK, json=push(client_text))
        await client.post(HOOK, json=push(operator, wh_type="outgoing_message_phone"))
        await client.post(HOOK, json=push(personal))
        await client.post(HOOK, json=sample("group_reaction"))
        await client.post(HOOK, json=sample("status_broadcast"))
        found = await collect(broker, queues.incoming, expect=2, wait_s=5, settle=1.0)
        stats = (await client.get("/stats", headers={"X-API-Key": ADMIN_KEY})).json()
    assert [(b["message_id"], b.get("sender"), b["message_text"]) for b in found] == [
        (client_text["id"], None, "Сколько стоит тариф Старт?"),
        (operator["id"], "operator", "Иван, это Айгерим, сейчас расскажу"),
    ]
    assert found[1]["chat_id"] == f"{CUSTOMER}@c.us" and found[1]["sender_name"] is None
    assert sorted(await directions(sessions)) == [
        ("incoming", None),
        ("operator", None),
        ("skipped", "group"),
        ("skipped", "status_broadcast"),
        ("skipped", "whitelisted"),
    ]
    skipped = stats["skipped_today"]
    assert (skipped["whitelisted"], skipped["group"], skipped["status_broadcast"]) == (1, 1, 1)


async def test_the_bots_own_sends_pushed_back_are_not_forwarded(
    hooked, sessions, broker, queues, sandbox, publish
):
    async with running_gateway(hooked) as (_, client):
        for n, text_ in enumerate(["Добрый день!", "Тариф Старт — 15 000 ₸"]):
            body = {"phone_number": CUSTOMER, "message_text": text_, "outgoing_id": f"bot-{n}"}
            await publish(queues.outgoing, body)
        assert len(await sent_by_bot(sandbox, 2)) == 2
        chat = (await sandbox.get(f"/sandbox/chats/{CUSTOMER}")).json()["messages"]
        echoes = [m for m in chat if m["is_me"]]
        assert len(echoes) == 2
        answer = await client.post(HOOK, json=push(*echoes, wh_type="outgoing_message_api"))
        found = await collect(broker, queues.incoming, expect=1, wait_s=2.0)
    assert answer.json() == {"status": "ok", "messages": 2}
    assert found == []
    assert await directions(sessions) == [("outgoing", None), ("outgoing", None)]


async def test_a_pushed_voice_note_is_transcribed_like_a_polled_one(
    hooked, sessions, broker, queues, sandbox
):
    async with running_gateway(hooked) as (_, client):
        await wait_first_poll(sessions)
        await client.post(HOOK, json=push(written("77015550001", "первое")))  # pushes flow: polling slows
        await asyncio.sleep(0.5)  # a poll cycle that had started before it ends
        voice = await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="Перезвоните мне завтра")
        await client.post(HOOK, json=push(voice, wh_type="incoming_message"))
        found = await collect(broker, queues.incoming, expect=2, wait_s=10, settle=0.5)
    by_id = {b["message_id"]: without_amqp(b) for b in found}
    assert by_id[voice["id"]]["message_text"] == "[ТРАНСКРИБАЦИЯ] Перезвоните мне завтра"
    assert by_id[voice["id"]]["is_voice"] is True
    async with sessions() as session:
        polled = await session.scalar(select(ChatCursor).where(ChatCursor.chat_id == f"{CUSTOMER}@c.us"))
    assert polled is None  # the push brought it, not a poll


async def test_a_message_polled_first_and_pushed_after_is_forwarded_once(
    hooked, sessions, broker, queues, sandbox
):
    async with running_gateway(hooked) as (_, client):
        await wait_first_poll(sessions)
        message = await inject(sandbox, phone=CUSTOMER, text="Здравствуйте, есть пробный период?")
        assert len(await collect(broker, queues.incoming, expect=1, wait_s=5)) == 1
        answer = await client.post(HOOK, json=push(message, wh_type="incoming_message"))
        again = await collect(broker, queues.incoming, expect=1, wait_s=1.5)
    assert answer.json() == {"status": "ok", "messages": 1}
    assert again == []
    assert await directions(sessions) == [("incoming", None)]


async def test_a_message_pushed_first_and_polled_after_is_forwarded_once(
    hooked, sessions, broker, queues, sandbox
):
    soon = hooked.model_copy(update={"WAPPI_WEBHOOK_POLL_INTERVAL": 1.0})
    async with running_gateway(soon) as (_, client):
        await wait_first_poll(sessions)
        await client.post(HOOK, json=push(written("77015550001", "первое")))  # pushes flow: a poll a second
        await asyncio.sleep(0.3)
        message = await inject(sandbox, phone=CUSTOMER, text="Здравствуйте, есть пробный период?")
        await client.post(HOOK, json=push(message, wh_type="incoming_message"))
        deadline = time.monotonic() + 5
        cursor = None
        while cursor is None and time.monotonic() < deadline:  # until a poll has read the chat too
            async with sessions() as session:
                cursor = await session.scalar(
                    select(ChatCursor).where(ChatCursor.last_message_id == message["id"])
                )
            await asyncio.sleep(0.1)
        found = await collect(broker, queues.incoming, expect=3, wait_s=1.0)
    assert cursor is not None, "no poll read the chat"
    assert sorted(b["message_text"] for b in found) == ["Здравствуйте, есть пробный период?", "первое"]


@pytest.fixture
async def both_paths(
    settings, sessions, publisher, topology
) -> AsyncIterator[tuple[PollerDeps, WebhookDeps]]:
    """The poller's and the webhook worker's parts without their loops, so a test runs them at once."""
    metrics = GatewayMetrics()
    wappi = WappiClient(base_url=settings.WAPPI_BASE_URL, token=WAPPI_TOKEN, profile_id="p", metrics=metrics)
    outbox = MessageLogOutbox(topology, utc_now)
    poller = PollerDeps(wappi, sessions, publisher, outbox, metrics, settings.tz, utc_now)
    pushes = WebhookDeps(sessions, publisher, outbox, metrics, settings.tz, utc_now)
    await poll_once(poller)  # the first start: what comes next is new
    yield poller, pushes
    await wappi.close()


async def test_a_message_pushed_and_polled_at_the_same_moment_is_forwarded_once(
    both_paths, sessions, broker, queues, sandbox
):
    poller, pushes = both_paths
    sent = []
    for round_ in range(5):
        messages = [
            await inject(sandbox, phone=f"7701555{round_}{n:03d}", text=f"вопрос {n}") for n in range(4)
        ]
        await store_push(sessions, [WappiMessage.model_validate(m) for m in messages], utc_now())
        await asyncio.gather(poll_once(poller), take_in_pushes(pushes))
        sent += [m["id"] for m in messages]
    found = await collect(broker, queues.incoming, expect=len(sent), wait_s=5, settle=1.0)
    assert sorted(b["message_id"] for b in found) == sorted(sent)


class SafetyNetPace:
    """The pace while pushes flow and the safety net polls hourly: a cycle now, the next an hour later."""

    async def cycle_due(self, last_cycle) -> bool:
        return last_cycle is None


async def test_a_safety_net_cycle_stopped_by_the_backlogs_room_goes_on_at_once_not_an_hour_later(
    both_paths, settings, broker, topology, queues, sandbox
):
    poller, _ = both_paths
    # Six customers wrote and every push was lost; the agent may be given two messages at a time.
    lost = [(await inject(sandbox, phone=f"770155504{n:02d}", text="Есть доставка?"))["id"] for n in range(6)]
    intake = IntakeLimit(broker, topology["incoming_messages"], max_backlog=2)
    lease = LeaderLease(settings.DATABASE_URL)
    polling = asyncio.create_task(
        run_poller(poller, lease=lease, interval=0.1, pace=SafetyNetPace(), intake=intake)
    )
    try:
        found = await collect(broker, queues.incoming, expect=6, wait_s=10)  # the agent takes what comes
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
    assert sorted(body["message_id"] for body in found) == sorted(lost)
