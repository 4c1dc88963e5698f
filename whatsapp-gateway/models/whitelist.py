"""whitelist: the business's personal numbers; the gateway never forwards them nor sends to them."""

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Whitelist(Base):
    __tablename__ = "whitelist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(20), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def whitelisted_numbers(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Whitelist.phone_number))).all())


async def is_whitelisted(session: AsyncSession, phone: str) -> bool:
    found = await session.scalar(select(Whitelist.id).where(Whitelist.phone_number == phone))
    return found is not None
