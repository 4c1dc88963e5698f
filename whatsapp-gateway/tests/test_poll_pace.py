"""The poller's pace in webhook mode, told by a clock the test moves: while pushes arrive a cycle runs every
WAPPI_WEBHOOK_POLL_INTERVAL; with no push for that long, every POLLING_INTERVAL again; without webhook mode,
at every wake as before."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from services.poll_pace import cycle_due
from tests.conftest import running_gateway, wait_first_poll

SECRET = "test-webhook-secret-4f0c9a7e1b2d3c5e6f"
HOOK = f"/webhooks/wappi/{SECRET}"
T = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)
SLOW = 60.0


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("now", "last_cycle", "last_push", "due"),
    [
        (at(0.2), at(0), None, True),  # no push ever: every wake
        (at(0.2), None, at(0), True),  # a new leader polls at once
        (at(30), at(0), at(10), False),  # pushes flow: not before a slow interval since the last cycle
        (at(60), at(0), at(59), True),
        (at(59.9), at(0), at(59), False),
        (at(70), at(65), at(10), True),  # no push for a slow interval: every wake again
        (at(69.9), at(65), at(10), False),
    ],
)
def test_a_cycle_is_due_at_every_wake_unless_pushes_flow(now, last_cycle, last_push, due):
    assert cycle_due(now, last_cycle, last_push, SLOW) is due


class ManualClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def cycles_during(sandbox: httpx.AsyncClient, seconds: float = 1.0) -> int:
    """Poll cycles seen by the fake Wappi (each lists the chats once) while `seconds` of wakes go by."""

    async def listed() -> int:
        return (await sandbox.get("/sandbox/stats")).json()["calls"].get("chats/get", 0)

    before = await listed()
    await asyncio.sleep(seconds)
    return await listed() - before


def a_push(n: int) -> dict:
    phone = f"7701555{n:04d}"
    message = {"id": uuid.uuid4().hex, "type": "chat", "body": f"вопрос {n}", "from": f"{phone}@c.us"}
    return {"messages": [message | {"chatId": f"{phone}@c.us", "time": int(time.time())}]}


@pytest.mark.usefixtures("clean")
async def test_while_pushes_arrive_the_poller_reads_wappi_once_a_webhook_poll_interval(
    settings, sessions, sandbox
):
    hooked = settings.model_copy(
        update={"WAPPI_WEBHOOK_SECRET": SecretStr(SECRET), "WAPPI_WEBHOOK_POLL_INTERVAL": SLOW}
    )
    clock = ManualClock(datetime.now(UTC))
    async with running_gateway(hooked, clock) as (_, client):
        await wait_first_poll(sessions)
        assert await cycles_during(sandbox) >= 3  # no push yet: a cycle at every wake (0.2 s)

        assert (await client.post(HOOK, json=a_push(1))).status_code == 200
        await asyncio.sleep(0.3)  # a cycle that had started before the push ends
        assert await cycles_during(sandbox) == 0
        clock.advance(30)
        assert (await client.post(HOOK, json=a_push(2))).status_code == 200
        clock.advance(29)
        assert await cycles_during(sandbox) == 0  # 59 s since the last cycle
        clock.advance(1.5)
        assert await cycles_during(sandbox) == 1  # the slow interval is over: one cycle, then none

        clock.advance(SLOW)  # no push for a whole slow interval: webhooks may be broken
        assert await cycles_during(sandbox) >= 3


@pytest.mark.usefixtures("clean")
async def test_without_webhook_mode_the_poller_reads_wappi_at_every_wake_whatever_the_clock(
    settings, sessions, sandbox
):
    clock = ManualClock(datetime.now(UTC))
    async with running_gateway(settings, clock) as (_, client):
        await wait_first_poll(sessions)
        assert (await client.post(HOOK, json=a_push(1))).status_code == 404
        assert await cycles_during(sandbox) >= 3
