"""A call with a manager, booked inside working hours (Astana time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ScheduledCall(Base):
    __tablename__ = "scheduled_calls"
    __table_args__ = (
        Index("idx_scheduled_calls_time", "scheduled_at"),
        # Two calls never take the same slot: the database settles concurrent bookings.
        Index(
            "uq_scheduled_calls_slot",
            "scheduled_at",
            unique=True,
            postgresql_where=text("status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    timezone: Mapped[str] = mapped_column(String(50), default="Asia/Almaty", server_default="Asia/Almaty")
    # 'scheduled', 'completed', 'cancelled'
    status: Mapped[str] = mapped_column(String(50), default="scheduled", server_default="scheduled")
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
