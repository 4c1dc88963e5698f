"""What the gateway deletes after RETENTION_DAYS (service_kit/retention.py runs it daily): message_logs rows
(texts, transcripts, raw payloads) whose work is done, and webhook pushes. Rows still to be published or
sent are kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_

from config.database import SessionFactory
from models.message_log import PENDING, SENDING, UNCERTAIN, MessageLog
from models.webhook_push import WebhookPush

UNFINISHED = (PENDING, SENDING, UNCERTAIN)


async def purge_older_than(sessions: SessionFactory, cutoff: datetime) -> dict[str, int]:
    statements = {
        "message_logs": delete(MessageLog).where(
            MessageLog.created_at < cutoff,
            or_(MessageLog.queue_status.is_(None), MessageLog.queue_status.not_in(UNFINISHED)),
        ),
        "webhook_pushes": delete(WebhookPush).where(WebhookPush.received_at < cutoff),
    }
    async with sessions() as session, session.begin():
        return {table: (await session.execute(stmt)).rowcount for table, stmt in statements.items()}
