"""Tokens of every Gemini call, for /stats and /metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class LlmUsage(Base):
    __tablename__ = "llm_usage"
    __table_args__ = (Index("idx_llm_usage_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "moderator", "sales_agent", "follow_up"
    purpose: Mapped[str] = mapped_column(String(50), nullable=False)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Candidates plus thinking tokens: both are billed as output.
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
