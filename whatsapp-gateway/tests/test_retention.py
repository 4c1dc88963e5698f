"""RETENTION_DAYS in the gateway: message_logs rows (texts, transcripts, raw payloads) and webhook pushes
older than that by the service's clock are deleted; rows still to be published or sent stay."""

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select

from models.message_log import INCOMING, OUTGOING, PENDING, PUBLISHED, SENT, MessageLog
from models.webhook_push import WebhookPush
from service_kit.retention import purge_once
from services.retention import purge_older_than

pytestmark = pytest.mark.usefixtures("clean")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


def row(key: str, created_at: datetime, status: str, direction: str = INCOMING) -> MessageLog:
    return MessageLog(
        message_id=key,
        phone_number="77016660301",
        direction=direction,
        message_text=f"текст {key}",
        payload={"message_text": f"текст {key}"},
        queue_status=status,
        created_at=created_at,
    )


async def test_old_message_logs_and_pushes_are_deleted_and_unfinished_rows_stay(sessions):
    async with sessions() as session, session.begin():
        session.add_all(
            [
                row("old-published", OLD, PUBLISHED),
                row("old-sent", OLD, SENT, OUTGOING),
                row("old-pending", OLD, PENDING),
                row("recent", RECENT, PUBLISHED),
                WebhookPush(messages=[{"id": "x", "body": "старый пуш"}], received_at=OLD),
                WebhookPush(messages=[{"id": "y", "body": "свежий пуш"}], received_at=RECENT),
            ]
        )

    removed = await purge_once(partial(purge_older_than, sessions), clock=lambda: NOW, days=30)

    assert removed == {"message_logs": 2, "webhook_pushes": 1}
    async with sessions() as session:
        kept = sorted((await session.scalars(select(MessageLog.message_id))).all())
        pushes = (await session.scalars(select(WebhookPush.messages))).all()
    assert kept == ["old-pending", "recent"]
    assert pushes == [[{"id": "y", "body": "свежий пуш"}]]
