"""A message to a manager's own WhatsApp (a booked call, a question the bot could not answer, the bot
paused in a chat, the morning digest, a call reminder), kept as an outbox row until the broker confirms it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("idx_notifications_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 'call_booked', 'question', 'bot_paused', 'digest', 'call_reminder', 'call_cancelled', 'call_moved'
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    manager_name: Mapped[str] = mapped_column(String(100), nullable=False)
    manager_phone: Mapped[str] = mapped_column(String(20), nullable=False)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_calls.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # The idempotency key on outgoing_messages; also what makes a digest or a reminder happen only once.
    outgoing_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    # A Gemini summary may still replace the text; the outbox sends what is there after a short wait.
    summary_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
