"""Forgetting a person in the gateway: POST /contacts/{phone}/forget, or the agent's contact_erasures
message, erases their message logs (number, texts, payloads) and whitelist entry; other people's rows stay,
and the forgotten messages are never taken in again when Wappi lists them once more."""

import asyncio

import pytest
from sqlalchemy import func, select

from models.message_log import INCOMING, OUTGOING, PUBLISHED, SENT, MessageLog
from models.whitelist import Whitelist
from tests.conftest import ADMIN_KEY, collect, inject, wait_first_poll

pytestmark = pytest.mark.usefixtures("gateway")
FORGOTTEN = "77016660501"
OTHER = "77016660502"
KEY = {"X-API-Key": ADMIN_KEY}


async def someones_history(sessions) -> None:
    async with sessions() as session, session.begin():
        for n, (phone, direction, status) in enumerate(
            [(FORGOTTEN, INCOMING, PUBLISHED), (FORGOTTEN, OUTGOING, SENT), (OTHER, INCOMING, PUBLISHED)]
        ):
            session.add(
                MessageLog(
                    message_id=f"forget-{n}",
                    chat_id=f"{phone}@c.us",
                    phone_number=phone,
                    direction=direction,
                    message_text=f"сообщение {n}",
                    payload={"message_text": f"сообщение {n}"},
                    queue_status=status,
                )
            )
        session.add(Whitelist(phone_number=FORGOTTEN, note="личный"))


async def rows_of(sessions, phone: str) -> tuple[int, int]:
    async with sessions() as session:
        logs = await session.scalar(select(func.count()).where(MessageLog.phone_number == phone))
        listed = await session.scalar(select(func.count()).where(Whitelist.phone_number == phone))
    return logs, listed


async def test_forget_on_the_gateways_own_api_erases_the_numbers_logs_and_whitelist_entry(gateway, sessions):
    _, client = gateway
    await someones_history(sessions)

    response = await client.post(f"/contacts/+{FORGOTTEN}/forget", headers=KEY)

    assert response.status_code == 200
    assert response.json() == {"erased": {"message_logs": 2, "whitelist": 1}}
    assert await rows_of(sessions, FORGOTTEN) == (0, 0)
    assert await rows_of(sessions, OTHER) == (1, 0)
    assert (await client.post(f"/contacts/{FORGOTTEN}/forget")).status_code == 401


async def test_the_agents_erasure_message_erases_the_number(sessions, publish, topology):
    await someones_history(sessions)

    body = {"erasure_id": "erase-1", "phone_number": FORGOTTEN, "requested_at": "2026-12-10T10:00:00+00:00"}
    await publish(topology["contact_erasures"].name, body, message_id="erase-1")

    for _ in range(100):
        if await rows_of(sessions, FORGOTTEN) == (0, 0):
            break
        await asyncio.sleep(0.05)
    assert await rows_of(sessions, FORGOTTEN) == (0, 0)
    assert await rows_of(sessions, OTHER) == (1, 0)


async def test_a_forgotten_persons_messages_are_not_taken_in_again_when_the_chat_is_read_again(
    gateway, sessions, sandbox, broker, queues
):
    _, client = gateway
    await wait_first_poll(sessions)
    written = await inject(sandbox, phone=FORGOTTEN, text="Здравствуйте, удалите мои данные")
    assert len(await collect(broker, queues.incoming, expect=1, wait_s=10)) == 1

    assert (await client.post(f"/contacts/{FORGOTTEN}/forget", headers=KEY)).status_code == 200
    # The chat's last minutes are read again on every poll (late arrivals): the message is still at Wappi.
    assert await collect(broker, queues.incoming, expect=1, wait_s=2) == []
    async with sessions() as session:
        kept = (
            await session.execute(select(MessageLog).where(MessageLog.message_id == written["id"]))
        ).scalar_one()
    assert (kept.phone_number, kept.chat_id, kept.message_text, kept.payload) == (None, None, None, None)
