"""A follow-up chain of up to five touches for a client who went silent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class FollowUp(Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        CheckConstraint("touch_number BETWEEN 1 AND 5", name="follow_ups_touch_number_check"),
        Index("idx_follow_ups_next_touch", "next_touch_at", postgresql_where=text("is_completed = FALSE")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    touch_number: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    next_touch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_touch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # 'client_responded', 'client_said_yes', 'client_said_no', 'completed_5_touches'
    stop_reason: Mapped[str | None] = mapped_column(String(100))
    # Why the chain started: the client went silent, or answered vaguely ("подумаю").
    reason: Mapped[str | None] = mapped_column(String(100))
    # The moment the intervals count from: the bot's last unanswered message.
    silent_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A worker writing this chain's touch: others pass the chain over until then (the database's time).
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
