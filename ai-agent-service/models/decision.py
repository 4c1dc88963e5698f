"""Why the product did what it did with a client's message: replied, guarded, a holding reply, left
unclassified or not a client, dead-lettered. Guarded rows keep what the model wanted to send and why it was
not sent. services/decision_log.py adds the kinds no row is written for (covered, not a client, pending)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

REPLIED = "replied"  # the model's reply went out as written, or the code's own booking text
GUARDED = "guarded"  # the model's reply failed a check; the code's safe text went out instead
HANDED_OVER = "handed_over"  # a manager answers (the knowledge base had no answer); the client was told when
HOLDING = "holding"  # Gemini gave no usable answer; the code's holding reply went out
UNCLASSIFIED = "unclassified"  # the moderator could not tell yet; nothing was sent
NOT_A_CLIENT = "not_a_client"  # stored, never answered
PAUSED = "paused"  # the bot is paused in the chat (a person took over, or an operator paused it)
OPTED_OUT = "opted_out"  # the client asked to stop; the code's confirmation went out
SEND_BUDGET = "send_budget"  # the day's bot messages in this chat are spent; nothing was sent
LOOP_SUSPECTED = "loop_suspected"  # the other side looks like a bot answering a bot; nothing was sent
LLM_BUDGET = "llm_budget"  # the contact used its Gemini calls of the hour; at most one code text went out
VOICE_TOO_LONG = "voice_too_long"  # a voice note over the gateway's limits; the code asked for text instead
DEAD_LETTERED = "dead_lettered"  # handling failed for good: parked in incoming_messages.dlq with the reason


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (Index("idx_decisions_contact", "contact_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # The client message the turn was about, and the bot message that answered it (if any).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    model_text: Mapped[str | None] = mapped_column(Text)  # what the model wanted to send, when it was not
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
