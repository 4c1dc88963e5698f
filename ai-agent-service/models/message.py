"""One message of a conversation: the client's (from the queue) or the bot's (a reply or follow-up)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# sent_by of what a person typed on the business phone (stored with the business's messages, never published).
OPERATOR = "operator"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("idx_messages_contact_id", "contact_id"),
        Index("idx_messages_timestamp", text("timestamp DESC")),
        # The outbox loop looks only at bot messages not yet confirmed by the broker.
        Index(
            "idx_messages_unpublished",
            "created_at",
            postgresql_where=text("is_from_bot AND published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(String(20), nullable=False)
    # WhatsApp's id of a client message; NULL for the bot's own messages.
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    message_text: Mapped[str | None] = mapped_column(Text)
    is_from_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    is_voice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    voice_transcription: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    message_type: Mapped[str] = mapped_column(String(20), default="text", server_default="text")
    # Bot messages: what produced them ("reply", "follow_up", "manual").
    sent_by: Mapped[str | None] = mapped_column(String(20))
    # Bot messages: the idempotency key on outgoing_messages; the gateway sends one outgoing_id once.
    outgoing_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    reply_to_message_id: Mapped[str | None] = mapped_column(String(255))
    # Client messages: when a bot reply covered this message (NULL = still unanswered).
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bot messages: when the broker confirmed the publish (NULL = still in the outbox).
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Client messages: the sales agent's read of the client's stance ("yes", "no", "undecided", "asking").
    stance: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
