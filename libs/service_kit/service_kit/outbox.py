"""The outbox relay: a message is a row before it is published, and marked published only after the broker
confirmed it. Whoever publishes claims the rows first (FOR UPDATE SKIP LOCKED), so the writer right after its
commit, the repair loop and other replicas never publish a row twice.

One failure rule: what the broker confirmed is marked published, what failed stays pending for the next pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from loguru import logger
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service_kit.liveness import run_every
from service_kit.publisher import Outgoing, Publisher

REPAIR_INTERVAL_S = 5.0
# Rows younger than this are still being published by their writer; the repair loop leaves them alone.
REPAIR_AFTER = timedelta(seconds=10)
BATCH = 100


class OutboxTable(Protocol):
    """How one service keeps the messages that wait for the broker."""

    def claim(self, ids: Sequence[int] | None, older_than: timedelta | None, limit: int) -> Executable:
        """A SELECT of pending rows (these ids, or any created more than `older_than` ago by the database's
        clock), oldest first, FOR UPDATE SKIP LOCKED."""

    def outgoing(self, row: Any) -> Outgoing:
        """The message a claimed row stands for."""

    def row_id(self, row: Any) -> int: ...

    def mark_published(self, ids: list[int]) -> Executable: ...


async def relay(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    table: OutboxTable,
    *,
    ids: Sequence[int] | None = None,
    older_than: timedelta | None = None,
    limit: int = BATCH,
) -> int:
    """Publishes pending rows (the given ids, or the repair loop's stale ones); returns how many went out."""
    if ids is not None and not ids:
        return 0
    async with sessions.begin() as session:
        rows = (await session.execute(table.claim(ids, older_than, limit))).all()
        if not rows:
            return 0
        results = await publisher.publish_all([table.outgoing(row) for row in rows])
        confirmed = []
        for row, error in zip(rows, results, strict=True):
            if error is None:
                confirmed.append(table.row_id(row))
            else:
                logger.warning("Outbox: row {} not confirmed, left pending: {}", table.row_id(row), error)
        if confirmed:
            await session.execute(table.mark_published(confirmed))
    return len(confirmed)


async def run_repair_loop(
    sessions: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    table: OutboxTable,
    *,
    interval: float = REPAIR_INTERVAL_S,
    heartbeat: Callable[[], None] = lambda: None,
) -> None:
    """Publishes what a crash or a broker outage left pending, forever; `heartbeat` after each round."""

    async def repair() -> None:
        published = await relay(sessions, publisher, table, older_than=REPAIR_AFTER)
        if published:
            logger.info("Outbox: republished {} pending message(s)", published)

    await run_every(interval, repair, what="Outbox round", heartbeat=heartbeat)
