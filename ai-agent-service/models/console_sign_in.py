"""Wrong console passwords per client address, kept in PostgreSQL so a lock-out holds across restarts and
replicas (console/lockout.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ConsoleSignInFailures(Base):
    __tablename__ = "console_sign_in_failures"

    # The address the sign-in came from (a trusted proxy's X-Forwarded-For, as uvicorn reads it).
    client_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Wrong passwords in a row since the last lock-out or success; counting starts over after a quiet spell.
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # No sign-in from this address, right password or not, until then.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
