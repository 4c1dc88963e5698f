"""The PostgreSQL engine, built once by app.py (the session factory comes with service_kit's runtime)."""

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service_kit.settings import to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(database_url: str) -> AsyncEngine:
    # Every transaction is short: none waits on Wappi, Gemini or the network but the outbox's broker
    # confirms. Ten connections serve the sender's and the voice worker's bursts, the poller, the outbox
    # and the API; the overflow absorbs a spike. The poller's lease has a connection of its own.
    # pool_pre_ping: a restarted database must not surface as errors on the first requests after it.
    return create_async_engine(
        to_asyncpg_url(database_url), pool_size=10, max_overflow=10, pool_pre_ping=True
    )
