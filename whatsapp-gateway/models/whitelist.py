"""whitelist: the business's personal numbers; the gateway never forwards them nor sends to them.

Numbers are stored in one form (utils.whatsapp_ids.normalize_phone) and every number is compared in that
form, so `+7 701 123 45 67`, `8 701 123 45 67` and `77011234567@c.us` are all the same entry."""

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, validates

from models.base import Base
from utils.whatsapp_ids import normalize_phone

# The database refuses any other form, so a number added by hand (psql) cannot silently miss.
NORMALIZED_FORM = (
    "phone_number ~ '^[0-9]{7,15}$' AND phone_number NOT LIKE '00%' "
    "AND NOT (length(phone_number) = 11 AND phone_number LIKE '8%')"
)


class Whitelist(Base):
    __tablename__ = "whitelist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(20), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint(NORMALIZED_FORM, name="ck_whitelist_normalized_phone"),)

    @validates("phone_number")
    def _normalized(self, _key: str, value: str) -> str:
        return normalize_phone(value)


async def whitelisted_numbers(session: AsyncSession) -> set[str]:
    return {normalize_phone(n) for n in await session.scalars(select(Whitelist.phone_number))}


async def is_whitelisted(session: AsyncSession, phone: str) -> bool:
    key = normalize_phone(phone)
    if not key:
        return False
    found = await session.scalar(select(Whitelist.id).where(Whitelist.phone_number == key))
    return found is not None
