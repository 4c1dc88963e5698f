"""A WhatsApp contact and what the moderator decided about it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("idx_contacts_is_client", "is_client"),
        Index("idx_contacts_phone", "phone_number"),
        CheckConstraint("language IN ('ru', 'kk')", name="ck_contacts_language"),
    )
    # Reads back updated_at after an UPDATE, so an updated contact can be serialised without another query.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(255))
    business_name: Mapped[str | None] = mapped_column(String(255))
    # NULL = not enough data yet; the moderator keeps looking.
    is_client: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=None)
    classification_confidence: Mapped[float | None] = mapped_column(Float)
    classification_reasoning: Mapped[str | None] = mapped_column(Text)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The bot is silent in this chat while pause_reason is set and paused_until (NULL: until resumed) is
    # ahead: operator_replied, manual, send_budget, loop_suspected (services/chat_control.py).
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str | None] = mapped_column(String(30))
    # The client asked to stop: never chased again (replies to real questions still go out).
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The contact's lead in Bitrix24 (BITRIX24_WEBHOOK_URL), once found or created: never created twice.
    crm_lead_id: Mapped[int | None] = mapped_column(BigInteger)
    # The conversation's language, "ru" or "kk", from the client's latest message that clearly says which
    # (services/language.py); NULL until one does, and the code writes Russian meanwhile.
    language: Mapped[str | None] = mapped_column(String(2))
    # Gemini calls this contact's messages made in the clock hour starting at llm_calls_hour
    # (services/llm_budget.py): over MAX_LLM_CALLS_PER_CONTACT_PER_HOUR, the model is not asked.
    llm_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    llm_calls_hour: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
