"""Work slots: a burst of messages shares the CPU among a few handlers at a time, oldest message first, while
Gemini's waits still overlap. The slots alone, then the consumer on real PostgreSQL and RabbitMQ with Gemini
on respx (tests/gemini_stub.py) behind a delay or none."""

import asyncio
import json
from dataclasses import replace

import pytest

from services import message_consumer
from services.work_slots import WorkSlots, slot_given_back
from tests.conftest import incoming, start_consuming

BUSINESS = "ТОО Жарык Трейд"  # the stub's moderator calls a contact with a company a client


async def test_a_freed_slot_goes_to_the_oldest_ticket_waiting_not_to_the_first_to_ask():
    slots = WorkSlots(1)
    first, old, new = slots.ticket(), slots.ticket(), slots.ticket()
    order = []

    async def work(ticket: int, name: str) -> None:
        async with slots.slot(ticket):
            order.append(name)
            await asyncio.sleep(0)

    async with slots.slot(first):
        newer = asyncio.create_task(work(new, "new"))
        await asyncio.sleep(0)  # the newer handler asks first
        older = asyncio.create_task(work(old, "old"))
        await asyncio.sleep(0)
        assert order == [] and slots.in_use == 1
    await asyncio.gather(newer, older)

    assert order == ["old", "new"]
    assert slots.in_use == 0


async def test_a_slot_given_back_for_a_wait_serves_another_handler_and_is_taken_back_in_turn():
    slots = WorkSlots(1)
    waiting, other = slots.ticket(), slots.ticket()
    seen = []

    async def other_handler() -> None:
        async with slots.slot(other):
            seen.append("other ran during the wait")

    async with slots.slot(waiting):
        task = asyncio.create_task(other_handler())
        async with slot_given_back():
            await task
        assert slots.in_use == 1  # taken back
    assert seen == ["other ran during the wait"]
    assert slots.in_use == 0


async def test_a_handler_cancelled_while_waiting_or_just_granted_leaves_no_slot_taken():
    slots = WorkSlots(1)
    holder, cancelled, granted_then_cancelled = slots.ticket(), slots.ticket(), slots.ticket()

    async def wait_for_slot(ticket: int) -> None:
        async with slots.slot(ticket):
            await asyncio.sleep(10)

    async with slots.slot(holder):
        waiting = asyncio.create_task(wait_for_slot(cancelled))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        next_one = asyncio.create_task(wait_for_slot(granted_then_cancelled))
        await asyncio.sleep(0)
    next_one.cancel()  # handed the slot at the release above, cancelled before it ran
    with pytest.raises(asyncio.CancelledError):
        await next_one

    assert slots.in_use == 0
    async with asyncio.timeout(1), slots.slot(slots.ticket()):
        assert slots.in_use == 1


def count_inside(monkeypatch, names: list[str]) -> dict[str, int]:
    """Wraps these message_consumer stages to count the handlers inside any of them at once."""
    inside = {"now": 0, "peak": 0}
    for name in names:
        original = getattr(message_consumer, name)

        async def counted(*args, _original=original, **kwargs):
            inside["now"] += 1
            inside["peak"] = max(inside["peak"], inside["now"])
            try:
                return await _original(*args, **kwargs)
            finally:
                inside["now"] -= 1

        monkeypatch.setattr(message_consumer, name, counted)
    return inside


async def test_a_burst_with_a_slow_gemini_keeps_the_cpu_stages_within_the_slots_and_overlaps_the_waits(
    agent, broker, gemini, queues, monkeypatch
):
    gemini.latency = 0.3
    inside = count_inside(monkeypatch, ["store_incoming", "read_conversation", "_commit"])
    for n in range(40):  # queued before the consumer starts: the whole burst is delivered at once
        await queues.publish_incoming(
            incoming("Сколько стоит тариф Старт?", phone=f"770570{n:05d}", business=BUSINESS)
        )
    consumer = await start_consuming(broker, replace(agent, slots=WorkSlots(3)))
    try:
        replies = await queues.wait_for(queues.outgoing_queue.name, count=40, seconds=40)
    finally:
        await consumer.stop()

    assert len(replies) == 40
    assert len({json.loads(r.body)["reply_to_message_id"] for r in replies}) == 40  # each answered once
    assert 2 <= inside["peak"] <= 3
    # The Gemini client gave the slot back for each wait: far more calls waited at once than there are slots.
    assert gemini.peak_in_flight >= 10
    assert await queues.drain(queues.incoming_queue.dlq) == []


async def test_a_cpu_bound_burst_is_answered_in_about_arrival_order_first_messages_first(
    agent, broker, gemini, queues, monkeypatch
):
    committed: list[int] = []
    stored_at_first_commit: list[int] = []
    stored = {"count": 0}
    original_store, original_commit = message_consumer.store_incoming, message_consumer._commit

    async def store(session, body):
        result = await original_store(session, body)
        stored["count"] += 1
        return result

    async def commit(contact_id, *args, **kwargs):
        result = await original_commit(contact_id, *args, **kwargs)
        if not committed:
            stored_at_first_commit.append(stored["count"])
        committed.append(contact_id)
        return result

    monkeypatch.setattr(message_consumer, "store_incoming", store)
    monkeypatch.setattr(message_consumer, "_commit", commit)
    burst = 60
    for n in range(burst):  # queued before the consumer starts: the whole burst is delivered at once
        await queues.publish_incoming(
            incoming("Сколько стоит тариф Старт?", phone=f"770580{n:05d}", business=BUSINESS)
        )
    consumer = await start_consuming(broker, replace(agent, slots=WorkSlots(3)))
    try:
        replies = await queues.wait_for(queues.outgoing_queue.name, count=burst, seconds=60)
    finally:
        await consumer.stop()

    assert len(replies) == burst
    # Contacts are numbered as their first message was stored, i.e. in about arrival order. The first reply
    # was committed long before the burst was even stored: nobody waited for everyone else.
    assert stored_at_first_commit[0] < burst // 3
    # Replies were committed in about that order: on average a reply is at most two places off.
    assert sum(abs(place - contact) for place, contact in enumerate(committed, start=1)) / burst <= 2
