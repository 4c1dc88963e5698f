"""send_rate: the token bucket that keeps the WhatsApp number under MAX_SENDS_PER_MINUTE (one row, shared by
every sender of every replica; services/send_rate.py takes its tokens)."""

from datetime import datetime

from sqlalchemy import DateTime, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SendRate(Base):
    __tablename__ = "send_rate"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    # Below zero: turns already given to sends that wait for them.
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
