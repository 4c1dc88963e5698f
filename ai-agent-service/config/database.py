"""The PostgreSQL engine and session factory, built once by app.py."""

from __future__ import annotations

import zlib

from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

# No connection is held while Gemini answers (replies, follow-up touches, reclassification: each reads, asks,
# then commits), only for the milliseconds of a read or a commit, so a small pool serves hundreds of
# messages in flight. It stays well under PostgreSQL's default max_connections (100), which the gateway and
# the migrations share. No overflow: an overflow connection is closed as soon as it is returned, and under
# load opening them again (and preparing every statement again on each) cost more CPU than waiting a moment
# for a pooled one.
POOL_SIZE = 20
MAX_OVERFLOW = 0
# Two-key advisory locks: the first key keeps contact locks apart from any other lock in the database.
_LOCK_NAMESPACE = 7201


def create_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        # No pre-ping: it adds two round trips to every checkout, several per message. A connection a
        # database restart left stale fails once, the pool is invalidated and the delivery retried.
        pool_pre_ping=False,
        pool_timeout=60,
    )


def contact_lock_key(phone_number: str) -> int:
    """Advisory-lock key of one contact (a stable 32-bit hash of the phone number)."""
    return zlib.crc32(phone_number.encode("ascii"))


async def lock_contact(session: AsyncSession, phone_number: str) -> None:
    """Serialises work on one contact across consumers until the current transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
        {"namespace": _LOCK_NAMESPACE, "key": _signed32(contact_lock_key(phone_number))},
    )


async def database_is_up(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("Health: database check failed: {}", exc)
        return False
    return True


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value
