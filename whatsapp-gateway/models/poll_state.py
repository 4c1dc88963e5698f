"""The poller's memory: the first-start cursor, the last poll time, and per-chat cursors."""

from datetime import datetime

from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

FIRST_START = "first_start"  # messages older than this are history and are never forwarded
LAST_POLL = "last_poll_time"  # when a poll cycle last completed (shown by /health)


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
