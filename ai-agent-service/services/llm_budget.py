"""Each contact's share of Gemini: at most MAX_LLM_CALLS_PER_CONTACT_PER_HOUR model calls in a clock hour.

The calls a turn is about to make are counted on the contact's row before Gemini is asked (one short
UPDATE, shared by every replica), so a contact writing non-stop costs at most the budget, and its messages
beyond it are handled without waiting on the model: other clients' messages keep flowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Contact
from service_kit.runtime import autocommit_session


@dataclass(frozen=True)
class BudgetCheck:
    allowed: bool  # the turn may ask Gemini
    first_refusal: bool  # the first turn of this hour over the budget: the client is told once


def hour_of(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


async def spend_llm_calls(
    sessions: async_sessionmaker[AsyncSession], contact_id: int, calls: int, limit: int, now: datetime
) -> BudgetCheck:
    """Counts `calls` against the contact's hour; allowed while the hour's total stays within `limit`."""
    hour = hour_of(now)
    contacts = Contact.__table__.c  # a plain Core UPDATE: nothing of this session's objects to keep in step
    async with autocommit_session(sessions) as session:  # one statement: no BEGIN/COMMIT round trips
        total = await session.scalar(
            update(Contact.__table__)
            .where(contacts.id == contact_id)
            .values(
                llm_calls=case((contacts.llm_calls_hour == hour, contacts.llm_calls + calls), else_=calls),
                llm_calls_hour=hour,
            )
            .returning(contacts.llm_calls)
        )
    total = total or 0
    return BudgetCheck(allowed=total <= limit, first_refusal=total > limit >= total - calls)
