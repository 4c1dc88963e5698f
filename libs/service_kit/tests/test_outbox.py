"""The outbox relay publishes claimed rows and marks only what the broker confirmed; what failed stays
pending; the repair pass takes rows older than the database's own clock says."""

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from service_kit.outbox import relay
from service_kit.publisher import Outgoing
from tests.conftest import take_all

metadata = MetaData()
rows = Table(
    "kit_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("queue", String, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("published", TIMESTAMP(timezone=True)),
    Column("created_at", TIMESTAMP(timezone=True), server_default=func.now()),
)


class KitOutbox:
    def claim(self, ids: Sequence[int] | None, older_than: timedelta | None, limit: int):
        query = select(rows).where(rows.c.published.is_(None)).order_by(rows.c.id).limit(limit)
        if ids is not None:
            query = query.where(rows.c.id.in_(ids))
        if older_than is not None:
            query = query.where(rows.c.created_at < func.now() - older_than)
        return query.with_for_update(skip_locked=True)

    def outgoing(self, row) -> Outgoing:
        return Outgoing(row.queue, row.body, message_id=f"row-{row.id}")

    def row_id(self, row) -> int:
        return row.id

    def mark_published(self, ids: list[int]):
        return update(rows).where(rows.c.id.in_(ids)).values(published=func.now())


@pytest.fixture
async def table(sessions):
    async with sessions.begin() as session:
        await session.run_sync(lambda s: metadata.create_all(s.connection()))
        await session.execute(text("TRUNCATE kit_outbox RESTART IDENTITY"))
    return KitOutbox()


async def add(sessions, queue: str, n: int, age: timedelta = timedelta(0)) -> list[int]:
    async with sessions.begin() as session:
        result = await session.execute(
            rows.insert().returning(rows.c.id), [{"queue": queue, "body": {"n": i}} for i in range(n)]
        )
        ids = [row_id for (row_id,) in result]
        await session.execute(update(rows).where(rows.c.id.in_(ids)).values(created_at=func.now() - age))
        return ids


async def unpublished(sessions) -> list[int]:
    async with sessions() as session:
        return list(await session.scalars(select(rows.c.id).where(rows.c.published.is_(None))))


async def test_given_rows_are_published_in_order_and_marked(
    sessions, table, connection, empty_queues, publisher
):
    queue = empty_queues["incoming_messages"].name
    ids = await add(sessions, queue, 3)

    assert await relay(sessions, publisher, table, ids=ids) == 3

    assert [m.message_id for m in await take_all(connection, queue)] == ["row-1", "row-2", "row-3"]
    assert await unpublished(sessions) == []
    assert await relay(sessions, publisher, table, ids=ids) == 0  # nothing is published twice


async def test_a_failed_publish_stays_pending_and_the_confirmed_ones_are_kept(
    sessions, table, connection, empty_queues, publisher
):
    good = await add(sessions, empty_queues["incoming_messages"].name, 2)
    unroutable = await add(sessions, "no-such-queue-anywhere", 1)  # the broker returns it: not confirmed

    published = await relay(sessions, publisher, table, ids=[*good, *unroutable])

    assert published == 2
    assert await unpublished(sessions) == unroutable


async def test_the_repair_pass_takes_only_rows_older_than_the_databases_clock_allows(
    sessions, table, connection, empty_queues, publisher
):
    queue = empty_queues["incoming_messages"].name
    stale = await add(sessions, queue, 1, age=timedelta(minutes=1))
    fresh = await add(sessions, queue, 1)

    assert await relay(sessions, publisher, table, older_than=timedelta(seconds=10)) == 1

    assert await unpublished(sessions) == fresh
    assert [m.message_id for m in await take_all(connection, queue)] == [f"row-{stale[0]}"]
