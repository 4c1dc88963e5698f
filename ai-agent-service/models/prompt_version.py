"""A saved version of one of the three prompts (the console's prompt editor): the newest one per prompt is
the live prompt, instead of its file; older ones are kept so a version can be restored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class PromptVersion(Base):
    __tablename__ = "prompt_versions"
    __table_args__ = (
        CheckConstraint(
            "prompt IN ('sales_agent', 'moderator', 'follow_up')", name="ck_prompt_versions_prompt"
        ),
        Index("idx_prompt_versions_prompt", "prompt", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Which prompt: a field name of config.prompts.Prompts.
    prompt: Mapped[str] = mapped_column(String(20), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # How it came about, for the history: "restored version 3", "restored the file".
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
