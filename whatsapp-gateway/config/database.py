"""The PostgreSQL engine, built once by app.py (the session factory comes with service_kit's runtime)."""

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service_kit.settings import to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(database_url: str) -> AsyncEngine:
    # Every transaction is short: none waits on Wappi, Gemini or the network but the outbox's broker
    # confirms. Ten connections serve the sender's and the voice worker's bursts, the poller, the outbox
    # and the API; the overflow absorbs a spike. The poller's lease has a connection of its own.
    # No pre-ping: it costs a round trip on every checkout, several per message (a tenth of the gateway's CPU
    # under load). A connection a database restart left stale fails once, the pool is invalidated, and the
    # delivery or poll is retried.
    return create_async_engine(to_asyncpg_url(database_url), pool_size=10, max_overflow=10)
