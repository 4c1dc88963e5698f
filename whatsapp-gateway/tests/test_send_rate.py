"""MAX_SENDS_PER_MINUTE across the whole WhatsApp number: sends beyond it wait their turn (shown by /stats),
holding no transaction meanwhile, and go out evenly spread at the rate, from every replica together; none
is lost, none goes out twice."""

import asyncio
import itertools
import time
from collections import Counter

import pytest
from sqlalchemy import select, text

from models.message_log import MessageLog
from tests.conftest import ADMIN_KEY, collect, running_gateway

pytestmark = pytest.mark.usefixtures("clean")
KEY = {"X-API-Key": ADMIN_KEY}
RATE = 1200  # a minute's: 20 sends a second, so 100 sends take about five seconds
SENDS = 100
CUSTOMERS = [f"7701555{n:04d}" for n in range(4)]


async def sent_count(sandbox) -> int:
    return len((await sandbox.get("/sandbox/sent")).json()["messages"])


async def long_open_transactions(sessions) -> int:
    """Connections of this database in a transaction for over three seconds: a sender holding one while it
    waits its turn would be one (the last turns come about five seconds after the first), while a short
    transaction on a starved CPU is not."""
    async with sessions() as session:
        return await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE "
                "'idle in transaction%' AND clock_timestamp() - xact_start > interval '3 seconds'"
            )
        )


async def test_sends_beyond_the_limit_wait_their_turn_and_go_out_spread_at_the_rate_each_once(
    settings, sessions, broker, queues, sandbox, publish
):
    limited = settings.model_copy(update={"MAX_SENDS_PER_MINUTE": RATE})
    texts = [f"Сообщение {n:03d}" for n in range(SENDS)]
    # Two replicas, one limit: the bucket is the database's.
    async with running_gateway(limited) as (_, client), running_gateway(limited):
        for n, body in enumerate(texts):
            phone = CUSTOMERS[n % len(CUSTOMERS)]
            await publish(
                queues.outgoing, {"phone_number": phone, "message_text": body, "outgoing_id": f"rate-{n}"}
            )
        waiting, held = [], []
        deadline = time.monotonic() + 30
        while await sent_count(sandbox) < SENDS and time.monotonic() < deadline:
            waiting.append((await client.get("/stats", headers=KEY)).json()["send_queue"])
            held.append(await long_open_transactions(sessions))
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the last outcomes are recorded
        after = (await client.get("/stats", headers=KEY)).json()["send_queue"]
        dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1, wait_s=0.2)
    sent = (await sandbox.get("/sandbox/sent")).json()["messages"]
    async with sessions() as session:
        rows = (await session.scalars(select(MessageLog).where(MessageLog.direction == "outgoing"))).all()

    assert Counter(m["body"] for m in sent) == Counter(texts)  # each once
    assert dead == []
    assert {(r.queue_status, r.attempts) for r in rows} == {("sent", 1)}
    per_second = RATE / 60
    # The turns handed out are 1/rate apart; the sends themselves keep to them, give or take a wake-up.
    turns = sorted(r.turn_at for r in rows)
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(turns)) >= 0.99 / per_second
    moments = sorted(r.processed_at for r in rows)
    assert (moments[-1] - moments[0]).total_seconds() >= 0.9 * (SENDS - 1) / per_second
    # No send goes out before its turn (processed_at is stamped once Wappi answered, so a send held up on a
    # busy machine may come late, never early).
    assert all(r.processed_at >= r.turn_at for r in rows)
    assert max(w["waiting"] for w in waiting) >= 20
    assert max(w["oldest_wait_s"] for w in waiting) >= 0.5
    assert after == {"waiting": 0, "oldest_wait_s": 0.0}
    assert max(held) == 0
