"""webhook_pushes: what Wappi pushed, kept from before the push is answered until its messages are rows of
message_logs (the worker deletes a push in the transaction that stores its messages)."""

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class WebhookPush(Base):
    __tablename__ = "webhook_pushes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The push's messages as the gateway reads them (services/webhook_push.py); its other items are not kept.
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
