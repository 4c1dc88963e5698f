"""The outbox: bot messages are stored first, published after the commit, and marked published after the
broker's confirm; a loop republishes whatever a crash or a broker outage left behind."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from loguru import logger
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.database import autocommit_session
from config.queue import Broker
from models import Message

REPUBLISH_AFTER = timedelta(seconds=5)
REPUBLISH_BATCH = 100
LOOP_INTERVAL_SECONDS = 2.0


def outgoing_body(message: Message) -> dict[str, Any]:
    """The outgoing_messages contract body of a stored bot message."""
    body: dict[str, Any] = {
        "phone_number": message.phone_number,
        "message_text": message.message_text,
        "reply_to_message_id": message.reply_to_message_id,
        "mark_as_read": message.sent_by == "reply",
        "outgoing_id": message.outgoing_id,
    }
    if message.sent_by:
        body["sent_by"] = message.sent_by
    return body


async def publish_stored(
    session_factory: async_sessionmaker[AsyncSession], broker: Broker, message: Message
) -> bool:
    """Publishes a committed bot message; on failure it stays in the outbox for the loop."""
    try:
        await broker.publish(
            broker.names.outgoing_messages, outgoing_body(message), message_id=message.outgoing_id
        )
    except Exception as exc:
        logger.warning("Publishing {} failed, the outbox will retry: {}", message.outgoing_id, exc)
        return False
    async with autocommit_session(session_factory) as session:
        await session.execute(
            update(Message)
            .where(Message.id == message.id, Message.published_at.is_(None))
            .values(published_at=func.now())
        )
    return True


async def republish_pending(session_factory: async_sessionmaker[AsyncSession], broker: Broker) -> int:
    """One outbox pass; SKIP LOCKED lets several replicas share the work without sending twice."""
    async with session_factory.begin() as session:
        rows = (
            await session.scalars(
                select(Message)
                .where(
                    Message.is_from_bot.is_(True),
                    Message.published_at.is_(None),
                    Message.created_at < func.now() - REPUBLISH_AFTER,
                )
                .order_by(Message.created_at)
                .limit(REPUBLISH_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for message in rows:
            await broker.publish(
                broker.names.outgoing_messages, outgoing_body(message), message_id=message.outgoing_id
            )
            message.published_at = func.now()
    if rows:
        logger.info("Outbox republished {} message(s)", len(rows))
    return len(rows)


async def run_outbox_loop(
    session_factory: async_sessionmaker[AsyncSession], broker: Broker, interval: float = LOOP_INTERVAL_SECONDS
) -> None:
    while True:
        try:
            await republish_pending(session_factory, broker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Outbox pass failed, next in {}s: {}", interval, exc)
        await asyncio.sleep(interval)
