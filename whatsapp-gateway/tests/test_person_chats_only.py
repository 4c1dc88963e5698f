"""Only a person's own chat is answered: Status updates, channels, groups, chats that are nobody's phone
and hidden numbers without a real phone never reach the agent, and /stats counts each once per reason.

The sandbox cannot make Status, channel or @lid chats yet: Wappi's answers here are respx-faked, built
from the real payloads in tests/wappi_samples."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from models.message_log import MessageLog
from tests.conftest import ADMIN_KEY, collect, running_gateway, wait_first_poll, without_amqp

pytestmark = pytest.mark.usefixtures("clean")
SAMPLES = Path(__file__).resolve().parent / "wappi_samples"
FAKE_WAPPI = "https://wappi.test"
KEY = {"X-API-Key": ADMIN_KEY}
LID = "185463918842095@lid"
NO_SKIPS = {
    "status_broadcast": 0,
    "broadcast": 0,
    "channel": 0,
    "group": 0,
    "not_a_person": 0,
    "hidden_number": 0,
    "whitelisted": 0,
    "reaction": 0,
}
EVERY_KIND_ONCE = {
    **NO_SKIPS,
    "status_broadcast": 1,
    "channel": 1,
    "group": 1,
    "not_a_person": 1,
    "hidden_number": 1,
}


class FakeWappi:
    """Chats and their messages as Wappi's chats/get and messages/get answer them, stamped on `clock`."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.chats: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.read: list[str] = []  # chat ids whose messages were asked for

    def add(self, name: str, chat_id: str, chat_type: str = "dialog", **fields: Any) -> dict[str, Any]:
        """A copy of the sample `name` written now (or at `time`) in `chat_id`, with a fresh id."""
        payload = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))["messages"][0]
        message = {**payload, "id": uuid.uuid4().hex.upper(), "chatId": chat_id, "time": self.now()}
        message.pop("timestamp", None)
        message.update(fields)
        self.chats.setdefault(chat_id, (chat_type, []))[1].append(message)
        return message

    def now(self) -> int:
        return int(self.clock().timestamp())

    @staticmethod
    def _newest_first(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Within one second, the one written later is newer.
        order = sorted(range(len(messages)), key=lambda i: (messages[i]["time"], i), reverse=True)
        return [messages[i] for i in order]

    def chat_list(self, request: httpx.Request) -> httpx.Response:
        dialogs = []
        for chat_id, (chat_type, messages) in self.chats.items():
            last = self._newest_first(messages)[0]
            entry = {"id": chat_id, "chat_type": chat_type, "last_time": last["time"]}
            dialogs.append({**entry, "last_message_data": last})
        dialogs.sort(key=lambda d: d["last_time"], reverse=True)
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"status": "done", "dialogs": dialogs[offset : offset + limit]})

    def messages(self, request: httpx.Request) -> httpx.Response:
        chat_id = request.url.params["chat_id"]
        self.read.append(chat_id)
        newest_first = self._newest_first(self.chats.get(chat_id, ("", []))[1])
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"status": "done", "messages": newest_first[offset : offset + limit]})


@pytest.fixture
async def wappi(settings, midday) -> AsyncIterator[tuple[FakeWappi, Any]]:
    """The fake Wappi, with the gateway to start on its clock (midday in Astana: /stats' day holds)."""
    fake = FakeWappi(midday)
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{FAKE_WAPPI}/api/sync/chats/get").mock(side_effect=fake.chat_list)
        router.get(f"{FAKE_WAPPI}/api/sync/messages/get").mock(side_effect=fake.messages)
        router.get(f"{FAKE_WAPPI}/api/sync/get/status").respond(json={"status": "done", "authorized": True})
        router.route(host="127.0.0.1").pass_through()  # the sandbox (Gemini) stays real
        yield fake, settings.model_copy(update={"WAPPI_BASE_URL": FAKE_WAPPI})


async def skipped_today(client: httpx.AsyncClient, expected: dict[str, int]) -> dict[str, int]:
    """/stats' skipped_today once it shows `expected` (or after a few seconds)."""
    for _ in range(100):
        found = (await client.get("/stats", headers=KEY)).json()["skipped_today"]
        if found == expected:
            break
        await asyncio.sleep(0.05)
    return found


async def test_only_a_persons_own_chat_reaches_the_agent(wappi, sessions, broker, queues):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        fake.add("status_broadcast", "status@broadcast")
        fake.add("channel_post", "120363025246125486@newsletter")
        fake.add("group_message", "996771771777-1568813854@g.us", chat_type="group")
        fake.add(
            "incoming_dialog",
            "0@s.whatsapp.net",
            body="Системное уведомление",
            **{"from": "0@s.whatsapp.net"},
        )
        fake.add("lid_hidden", LID)
        customer = fake.add("incoming_dialog", "996500494009@c.us", body="Сколько стоит тур?")
        found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=1.0)
        stats = await skipped_today(client, EVERY_KIND_ONCE)
    assert [(b["message_id"], b["chat_id"], b["message_text"]) for b in found] == [
        (customer["id"], "996500494009@c.us", "Сколько стоит тур?")
    ]
    assert stats == EVERY_KIND_ONCE
    # What the chat id already tells is not even read.
    assert set(fake.read) == {"996500494009@c.us", LID}


async def test_a_status_update_is_never_forwarded_though_its_from_is_a_customers_number(
    wappi, sessions, broker, queues
):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        status = fake.add("status_broadcast", "status@broadcast")
        assert status["from"] == "996500494009@c.us"
        found = await collect(broker, queues.incoming, expect=1, wait_s=1.5)
        logs = (await client.get("/logs/messages", headers=KEY)).json()["messages"]
    assert found == []
    # Kept without its text: the operator sees why it was not answered.
    assert [
        (m["message_id"], m["direction"], m["skip_reason"], m["chat_id"], m["message_text"]) for m in logs
    ] == [(status["id"], "skipped", "status_broadcast", "status@broadcast", None)]


async def test_a_hidden_number_chat_is_answered_in_the_persons_own_chat_when_the_phone_is_known(
    wappi, sessions, broker, queues
):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        by_from = fake.add("lid_with_phone", LID, body="Здравствуйте")
        by_contact = fake.add("lid_contact_phone", "290187430016723@lid", body="Добрый вечер")
        hidden = fake.add("lid_hidden", "318920045571192@lid", body="Кто я?")
        found = await collect(broker, queues.incoming, expect=2, wait_s=5, settle=1.0)
        stats = await skipped_today(client, {**NO_SKIPS, "hidden_number": 1})
        async with sessions() as session:
            skipped = await session.scalar(
                select(MessageLog.message_id).where(MessageLog.direction == "skipped")
            )
    bodies = sorted((without_amqp(b) for b in found), key=lambda b: b["message_text"])
    assert [(b["message_id"], b["chat_id"], b["phone_number"]) for b in bodies] == [
        (by_contact["id"], "996500494009@c.us", "996500494009"),
        (by_from["id"], "996500494009@c.us", "996500494009"),
    ]
    assert stats == {**NO_SKIPS, "hidden_number": 1}
    assert skipped == hidden["id"]


async def test_a_message_seen_in_several_cycles_is_counted_once(wappi, sessions, broker, queues):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        second = fake.now()
        fake.add("status_broadcast", "status@broadcast")
        fake.add("lid_hidden", LID, time=second)
        first = {**NO_SKIPS, "status_broadcast": 1, "hidden_number": 1}
        assert await skipped_today(client, first) == first
        await asyncio.sleep(1.0)  # five more cycles list the same Status update again
        # A second message in the same second: the chat is read again from that second, the first included.
        fake.add("lid_hidden", LID, time=second)
        both = {**NO_SKIPS, "status_broadcast": 1, "hidden_number": 2}
        stats = await skipped_today(client, both)
        await asyncio.sleep(0.5)
        again = (await client.get("/stats", headers=KEY)).json()["skipped_today"]
    assert stats == again == both
    assert fake.read.count(LID) >= 2


async def test_a_hidden_number_chat_of_a_whitelisted_number_is_never_forwarded(
    wappi, sessions, broker, queues
):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        fake.add("lid_with_phone", LID, **{"from": "77752837306@c.us"})
        fake.add("lid_contact_phone", "290187430016723@lid", contact_phone="+7 775 283 73 06")
        stats = await skipped_today(client, {**NO_SKIPS, "whitelisted": 2})
        found = await collect(broker, queues.incoming, expect=1, wait_s=0.5)
    assert found == []
    assert stats == {**NO_SKIPS, "whitelisted": 2}


async def test_the_business_phones_own_messages_outside_a_clients_chat_are_never_forwarded(
    wappi, sessions, broker, queues
):
    fake, settings = wappi
    async with running_gateway(settings, fake.clock) as (_, client):
        await wait_first_poll(sessions)
        fake.add("status_broadcast", "status@broadcast", is_me=True, **{"from": "996706660009@c.us"})
        fake.add("group_message", "996771771777-1568813854@g.us", chat_type="group", is_me=True)
        # A hidden-number chat of a whitelisted number, and one whose phone is not known.
        fake.add("lid_contact_phone", "290187430016723@lid", is_me=True, contact_phone="+7 775 283 73 06")
        fake.add("lid_hidden", LID, is_me=True)
        customer = fake.add("incoming_dialog", "996500494009@c.us", body="Вопрос")
        found = await collect(broker, queues.incoming, expect=1, wait_s=5, settle=1.0)
        stats = await skipped_today(client, NO_SKIPS)
        async with sessions() as session:
            directions = list(await session.scalars(select(MessageLog.direction)))
    assert [b["message_id"] for b in found] == [customer["id"]]
    assert stats == NO_SKIPS  # the business's own words are no skipped customer message
    assert directions == ["incoming"]
