"""The outbox: a message is a message_logs row (queue_status 'pending', payload) before it is published,
and 'published' only after the broker confirmed it. Whoever publishes claims the row first
(FOR UPDATE SKIP LOCKED), so the poller, the voice worker and the repair loop never publish a row twice."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger
from sqlalchemy import func, select, update

from config.database import SessionFactory
from config.queue import Publisher, QueueNames
from models.message_log import PENDING, PUBLISHED, MessageLog

Clock = Callable[[], datetime]
REPAIR_INTERVAL_S = 5.0
# Rows younger than this are still being published by their writer; the loop leaves them alone.
REPAIR_AFTER = timedelta(seconds=10)


async def _publish_claimed(row: MessageLog, publisher: Publisher, queues: QueueNames, clock: Clock) -> None:
    await publisher.publish(queues.name(row.target_queue), row.payload, message_id=row.message_id)
    row.queue_status = PUBLISHED
    row.processed_at = clock()


async def publish_pending_row(
    sessions: SessionFactory, publisher: Publisher, queues: QueueNames, row_id: int, *, clock: Clock
) -> bool:
    """Publish one pending row; False if someone else holds it or it is already published."""
    async with sessions() as session, session.begin():
        row = await session.scalar(
            select(MessageLog)
            .where(MessageLog.id == row_id, MessageLog.queue_status == PENDING)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return False
        await _publish_claimed(row, publisher, queues, clock)
    return True


async def publish_pending_rows(
    sessions: SessionFactory, publisher: Publisher, queues: QueueNames, row_ids: list[int], *, clock: Clock
) -> int:
    """Publish many pending rows in one transaction, their confirms awaited together; returns how many
    went out. Rows someone else holds are skipped; a row whose publish fails stays pending for the loop."""
    if not row_ids:
        return 0
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(MessageLog.id, MessageLog.message_id, MessageLog.target_queue, MessageLog.payload)
                .where(MessageLog.id.in_(row_ids), MessageLog.queue_status == PENDING)
                .order_by(MessageLog.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
        # Started in row order on one channel: they reach the queue in the order the rows were written.
        results = await asyncio.gather(
            *(
                publisher.publish(queues.name(r.target_queue), r.payload, message_id=r.message_id)
                for r in rows
            ),
            return_exceptions=True,
        )
        confirmed = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("Publishing row {} failed, left to the outbox: {}", row.id, result)
            else:
                confirmed.append(row.id)
        if confirmed:
            await session.execute(
                update(MessageLog)
                .where(MessageLog.id.in_(confirmed))
                .values(queue_status=PUBLISHED, processed_at=clock())
            )
    return len(confirmed)


async def republish_pending(
    sessions: SessionFactory,
    publisher: Publisher,
    queues: QueueNames,
    *,
    clock: Clock,
    older_than: timedelta = REPAIR_AFTER,
    batch: int = 100,
) -> int:
    """Publish rows a crash (or a broker outage) left pending; returns how many went out."""
    published = 0
    async with sessions() as session, session.begin():
        rows = (
            await session.scalars(
                select(MessageLog)
                .where(
                    MessageLog.queue_status == PENDING,
                    MessageLog.target_queue.is_not(None),
                    # created_at is the database's time: compared with its now, not the service clock.
                    MessageLog.created_at <= func.now() - older_than,
                )
                .order_by(MessageLog.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            try:
                await _publish_claimed(row, publisher, queues, clock)
            except Exception as exc:
                # Keep what was confirmed so far; the rest waits for the next round.
                logger.warning("Outbox: publishing row {} failed, will retry: {}", row.id, exc)
                break
            published += 1
    if published:
        logger.info("Outbox: republished {} pending message(s)", published)
    return published


async def run_outbox(
    sessions: SessionFactory,
    publisher: Publisher,
    queues: QueueNames,
    *,
    clock: Clock,
    interval: float = REPAIR_INTERVAL_S,
    heartbeat: Callable[[], None] = lambda: None,
) -> None:
    """Repair rounds forever; `heartbeat` is called after each round, failed or not."""
    while True:
        try:
            await republish_pending(sessions, publisher, queues, clock=clock)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Outbox round failed")
        heartbeat()
        await asyncio.sleep(interval)
