"""A call with a manager, booked inside working hours (Astana time), and its reminders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ScheduledCall(Base):
    __tablename__ = "scheduled_calls"
    __table_args__ = (
        Index("idx_scheduled_calls_time", "scheduled_at"),
        # A manager never has two calls in one slot (without MANAGERS there is one calendar): the database
        # settles concurrent bookings.
        Index(
            "uq_scheduled_calls_manager_slot",
            "scheduled_at",
            func.coalesce(text("manager_phone"), ""),
            unique=True,
            postgresql_where=text("status = 'scheduled'"),
        ),
        Index(
            "idx_scheduled_calls_reminder", "reminder_due_at", postgresql_where=text("status = 'scheduled'")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    timezone: Mapped[str] = mapped_column(String(50), default="Asia/Almaty", server_default="Asia/Almaty")
    # 'scheduled', 'completed', 'cancelled', 'moved' (replaced by the call it was moved to)
    status: Mapped[str] = mapped_column(String(50), default="scheduled", server_default="scheduled")
    notes: Mapped[str | None] = mapped_column(Text)
    # The manager the call is assigned to (MANAGERS); NULL without managers.
    manager_name: Mapped[str | None] = mapped_column(String(100))
    manager_phone: Mapped[str | None] = mapped_column(String(20))
    # When the reminders are due (CALL_REMINDER_MINUTES before); NULL: none (booked too close to the call).
    reminder_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    client_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    manager_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
