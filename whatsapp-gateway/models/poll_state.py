"""The poller's memory: the first-start cursor, the last poll and push times, and per-chat cursors."""

from datetime import datetime

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

FIRST_START = "first_start"  # messages older than this are history and are never forwarded
LAST_POLL = "last_poll_time"  # when a poll cycle last completed (shown by /health)
LAST_WEBHOOK = "last_webhook_time"  # when a webhook push with messages last arrived (services/poll_pace.py)


class PollState(Base):
    __tablename__ = "poll_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ChatCursor(Base):
    """Newest message already seen in a chat: its Wappi time (whole seconds) and id."""

    __tablename__ = "chat_cursors"

    chat_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_message_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_message_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


async def read_state(session: AsyncSession, name: str) -> datetime | None:
    return await session.scalar(select(PollState.value).where(PollState.name == name))


async def write_state(session: AsyncSession, name: str, value: datetime) -> None:
    stmt = insert(PollState).values(name=name, value=value)
    await session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))


async def ensure_first_start(sessions: async_sessionmaker[AsyncSession], now: datetime) -> datetime:
    """The global history cursor: set once, on the very first run, to now."""
    async with sessions.begin() as session:
        await session.execute(
            insert(PollState)
            .values(name=FIRST_START, value=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return await read_state(session, FIRST_START)


async def last_poll_time(sessions: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessions() as session:
        return await read_state(session, LAST_POLL)
