"""message_logs: the spec's log table, also the outbox (payload + queue_status) and the send ledger."""

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# direction
INCOMING = "incoming"
OUTGOING = "outgoing"
OPERATOR = "operator"  # an is_me message typed on the business phone, not sent by the bot
SKIPPED = "skipped"  # a message the poller saw and did not forward: skip_reason says why (no text kept)

# queue_status: the outbox states of a row that is published, and the send states of an outgoing row
PENDING = "pending"
PUBLISHED = "published"
SENDING = "sending"  # claimed by a sender (claimed_at): Wappi is being asked, or its answer not yet recorded
SENT = "sent"
FAILED = "failed"  # the last attempt did not send it; a redelivery may try again
UNCERTAIN = "uncertain"  # a send whose answer never came: Wappi may have sent it; checked before a resend
REFUSED = "refused"
NOT_QUEUED = "not_queued"

# target_queue: the logical queue an outbox payload goes to (the real name comes from settings)
TO_INCOMING = "incoming"
TO_VOICE = "voice"


class MessageLog(Base):
    __tablename__ = "message_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Wappi's message id for incoming/operator rows; outgoing rows are keyed by outgoing_id instead.
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    outgoing_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    chat_id: Mapped[str | None] = mapped_column(String(255))
    phone_number: Mapped[str | None] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    message_type: Mapped[str | None] = mapped_column(String(20))
    message_text: Mapped[str | None] = mapped_column(Text)
    is_voice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    wappi_status: Mapped[str | None] = mapped_column(String(50))
    wappi_message_id: Mapped[str | None] = mapped_column(String(255))
    reply_to_message_id: Mapped[str | None] = mapped_column(String(255))
    sent_by: Mapped[str | None] = mapped_column(String(20))
    queue_status: Mapped[str | None] = mapped_column(String(50))
    target_queue: Mapped[str | None] = mapped_column(String(20))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(String(30))
    message_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transcribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a sender claimed this outgoing row (the database's time), and when its turn under
    # MAX_SENDS_PER_MINUTE comes (it waits until then): a claim whose turn is younger than the lease is held.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    turn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("idx_message_logs_phone", "phone_number"),
        Index("idx_message_logs_created", "created_at"),
        Index("idx_message_logs_wappi_message_id", "wappi_message_id"),
        # The outbox loop scans only what is still waiting for a broker confirm.
        Index(
            "idx_message_logs_outbox",
            "created_at",
            postgresql_where=text("queue_status = 'pending'"),
        ),
        Index("idx_message_logs_sending", "turn_at", postgresql_where=text("queue_status = 'sending'")),
    )
