"""What the agent deletes after RETENTION_DAYS (service_kit/retention.py runs it daily): the conversation's
messages (transcripts included), the decisions about them, the managers' notifications that quote them and the
CRM events already delivered. Rows still waiting to go out are kept; contacts (their classification) and
booked calls stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import CrmEvent, Decision, Message, Notification


async def purge_older_than(sessions: async_sessionmaker[AsyncSession], cutoff: datetime) -> dict[str, int]:
    statements = {
        "decisions": delete(Decision).where(Decision.created_at < cutoff),
        "messages": delete(Message).where(
            Message.timestamp < cutoff, or_(Message.is_from_bot.is_(False), Message.published_at.is_not(None))
        ),
        "notifications": delete(Notification).where(
            Notification.created_at < cutoff, Notification.published_at.is_not(None)
        ),
        "crm_events": delete(CrmEvent).where(
            CrmEvent.created_at < cutoff, CrmEvent.delivered_at.is_not(None)
        ),
    }
    async with sessions.begin() as session:
        return {table: (await session.execute(stmt)).rowcount for table, stmt in statements.items()}
