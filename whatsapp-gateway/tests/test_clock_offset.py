"""CLOCK_OFFSET_SECONDS runs the service days ahead (or behind) of the machine, e.g. to rehearse a Monday
morning; what the database stamps itself (created_at) is still compared correctly."""

from datetime import timedelta

import pytest

from models.message_log import MessageLog
from service_kit.clock import offset_clock, utc_now
from tests.conftest import ADMIN_KEY, running_gateway, wait_first_poll

pytestmark = pytest.mark.usefixtures("clean")
KEY = {"X-API-Key": ADMIN_KEY}
THREE_DAYS = 3 * 86400


async def test_the_offset_moves_the_services_clock(settings, sessions):
    ahead = settings.model_copy(update={"CLOCK_OFFSET_SECONDS": THREE_DAYS})
    async with running_gateway(ahead) as (_, client):
        await wait_first_poll(sessions)
        polled = (await client.get("/health")).json()["last_poll_time"]
    expected = (utc_now() + timedelta(seconds=THREE_DAYS)).astimezone(settings.tz)
    assert polled[:10] == expected.date().isoformat()


@pytest.mark.parametrize("days", [-3, 3])
async def test_stats_count_what_the_database_stamped_today_whatever_the_offset(settings, sessions, days):
    async with sessions() as session, session.begin():
        # created_at is left to the database: its now, the machine's time.
        session.add(MessageLog(message_id="IN-1", direction="incoming", queue_status="published"))
        session.add(MessageLog(message_id="SKIP-1", direction="skipped", skip_reason="channel"))
    async with running_gateway(settings, offset_clock(days * 86400)) as (_, client):
        stats = (await client.get("/stats", headers=KEY)).json()
    assert stats["messages_received_today"] == 1
    assert stats["skipped_today"]["channel"] == 1
