"""message_logs as the gateway's outbox (service_kit.outbox): a row with a payload, a target queue and
queue_status 'pending' is a message waiting for the broker; 'published' once the broker confirmed it.
The poller and the voice worker relay their rows right after their commit; the repair loop takes the rest."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Executable, func, select, update

from models.message_log import PENDING, PUBLISHED, TO_INCOMING, TO_VOICE, MessageLog
from service_kit.clock import Clock
from service_kit.publisher import Outgoing
from service_kit.queues import Queues

# target_queue holds the gateway's short name of the queue; the contract's name finds its real one.
CONTRACT_OF = {TO_INCOMING: "incoming_messages", TO_VOICE: "voice_transcription"}


class MessageLogOutbox:
    """The OutboxTable of message_logs."""

    def __init__(self, queues: Queues, clock: Clock):
        self.queues = queues
        self.clock = clock  # processed_at is the service's time, like the sender's

    def claim(self, ids: Sequence[int] | None, older_than: timedelta | None, limit: int) -> Executable:
        query = (
            select(MessageLog.id, MessageLog.message_id, MessageLog.target_queue, MessageLog.payload)
            .where(MessageLog.queue_status == PENDING, MessageLog.target_queue.is_not(None))
            .order_by(MessageLog.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(MessageLog.id.in_(ids))
        if older_than is not None:
            # created_at is the database's time: compared with its now, never the (offset) service clock.
            query = query.where(MessageLog.created_at <= func.now() - older_than)
        return query

    def outgoing(self, row: Any) -> Outgoing:
        queue = self.queues[CONTRACT_OF[row.target_queue]]
        return Outgoing(queue.name, row.payload, message_id=row.message_id)

    def row_id(self, row: Any) -> int:
        return row.id

    def mark_published(self, ids: list[int]) -> Executable:
        return (
            update(MessageLog)
            .where(MessageLog.id.in_(ids))
            .values(queue_status=PUBLISHED, processed_at=self.clock())
        )
