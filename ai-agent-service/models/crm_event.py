"""An event for a CRM (the signed webhook or Bitrix24), kept as an outbox row until that CRM took it: one row
per event and target, delivered in order per contact and target, retried with backoff until it is taken, or
parked when the CRM's answer says retrying cannot help."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

PENDING = "delivered_at IS NULL AND parked_at IS NULL"


class CrmEvent(Base):
    __tablename__ = "crm_events"
    __table_args__ = (
        # One event has one id whatever the target: X-Event-Id on the webhook, ORIGIN_ID in Bitrix24.
        UniqueConstraint("event_id", "target", name="uq_crm_events_event_target"),
        Index("idx_crm_events_due", "next_attempt_at", postgresql_where=text(PENDING)),
        # The claim looks for an earlier pending event of the same contact and target.
        Index("idx_crm_events_contact_pending", "contact_id", "target", "id", postgresql_where=text(PENDING)),
        Index("idx_crm_events_parked", "parked_at", postgresql_where=text("parked_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, default=uuid.uuid4)
    # 'webhook' (CRM_WEBHOOK_URL) or 'bitrix24' (BITRIX24_WEBHOOK_URL)
    target: Mapped[str] = mapped_column(String(20), nullable=False)
    # 'contact.classified', 'call.booked', 'call.cancelled', 'contact.opted_out'
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # {"contact": {...}, "data": {...}}: the contact as it was when the event happened, and the event's facts.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # A worker is delivering the row until then (the database's time); also the claim's token.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The CRM refused the event in a way retrying cannot fix; last_error says how.
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
