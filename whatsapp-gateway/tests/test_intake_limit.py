"""Backpressure: while more than MAX_INCOMING_BACKLOG messages wait for the agent on incoming_messages, the
poller leaves Wappi alone; the client's message waits there, unread, and is forwarded once the agent has
caught up."""

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select

from models.message_log import MessageLog
from tests.conftest import collect, inject, running_gateway, wait_first_poll


async def chat_listings(sandbox: httpx.AsyncClient) -> int:
    return (await sandbox.get("/sandbox/stats")).json()["calls"].get("chats/get", 0)


async def take_one(broker, queue: str) -> dict:
    """What the agent does with a delivery: takes it and acks it."""
    channel = await broker.channel()
    try:
        message = await (await channel.get_queue(queue, ensure=False)).get(no_ack=False)
        await message.ack()
        return json.loads(message.body)
    finally:
        await channel.close()


async def logged_ids(sessions) -> set[str]:
    async with sessions() as session:
        return set(await session.scalars(select(MessageLog.message_id)))


@pytest.mark.usefixtures("clean")
async def test_a_backlog_over_the_limit_leaves_new_messages_at_wappi_until_the_agent_catches_up(
    settings, sessions, sandbox, publish, broker, queues
):
    limited = settings.model_copy(update={"MAX_INCOMING_BACKLOG": 2})
    async with running_gateway(limited):
        await wait_first_poll(sessions)
        for n in range(3):  # what earlier polls forwarded, not yet taken by the agent
            await publish(queues.incoming, {"waiting": n}, message_id=f"waiting-{n}")
        await asyncio.sleep(0.5)  # a cycle that had started before the backlog grew ends
        listed = await chat_listings(sandbox)
        message = await inject(sandbox, phone="77015550101", text="Сколько стоит тариф Старт?")

        await asyncio.sleep(1.0)  # five wakes of the poller
        assert await chat_listings(sandbox) == listed  # Wappi was not even asked
        assert message["id"] not in await logged_ids(sessions)

        assert (await take_one(broker, queues.incoming)) == {"waiting": 0}  # 2 wait now: not over the limit
        forwarded = await collect(broker, queues.incoming, expect=3, wait_s=10)
        assert [body.get("waiting") for body in forwarded[:2]] == [1, 2]
        assert [body["message_id"] for body in forwarded[2:]] == [message["id"]]


async def taken_in_while_nobody_takes(
    settings, sessions, sandbox, broker, queues, *, max_backlog: int, customers: int
) -> int:
    """How many of `customers` new chats, written at once, the poller takes in while nobody takes anything off
    incoming_messages; then the agent catches up, and every message must reach it once."""
    limited = settings.model_copy(update={"MAX_INCOMING_BACKLOG": max_backlog})
    async with running_gateway(limited):
        await wait_first_poll(sessions)
        batch = [{"phone": f"7701555{n:04d}", "text": "Сколько стоит доставка?"} for n in range(customers)]
        written = await sandbox.post("/sandbox/messages/batch", json={"messages": batch})
        ids = {message["id"] for message in written.json()["messages"]}

        await asyncio.sleep(1.5)  # several wakes of the poller
        taken_in = len(await logged_ids(sessions) & ids)

        forwarded = await collect(broker, queues.incoming, expect=customers, wait_s=10)
        assert sorted(body["message_id"] for body in forwarded) == sorted(ids)  # each once, none lost
    return taken_in


@pytest.mark.usefixtures("clean")
async def test_a_cycle_reads_no_more_chats_than_the_backlog_has_room_for_and_the_rest_follow(
    settings, sessions, sandbox, broker, queues
):
    taken_in = await taken_in_while_nobody_takes(
        settings, sessions, sandbox, broker, queues, max_backlog=2, customers=6
    )
    # Room for 2, then one more while the backlog is not over the limit: 3 wait, then no more.
    assert taken_in == 3


@pytest.mark.usefixtures("clean")
async def test_a_poller_that_is_behind_waits_for_half_the_backlog_to_be_free_before_listing_again(
    settings, sessions, sandbox, broker, queues
):
    taken_in = await taken_in_while_nobody_takes(
        settings, sessions, sandbox, broker, queues, max_backlog=4, customers=8
    )
    # Four read, four left at Wappi; room for one more is not worth listing every chat again.
    assert taken_in == 4
