"""The PostgreSQL engine and session factory, built once by app.py."""

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from config.settings import normalize_database_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(database_url: str) -> AsyncEngine:
    # pool_pre_ping: a restarted database must not surface as errors on the first requests after it.
    # pool_size covers the sender's prefetch (each send holds a connection) beside the poller and the API.
    return create_async_engine(
        normalize_database_url(database_url),
        pool_size=40,
        max_overflow=10,
        pool_pre_ping=True,
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)
