"""The poller's leader lease: one replica polls Wappi at a time.

The lease is a PostgreSQL advisory lock held on a connection of its own, outside the pool: it lasts exactly
as long as that connection, so a replica that dies or loses the database loses the lease with it and
another replica takes over."""

import asyncpg

POLLER_LOCK_KEY = 7_310_452_001  # the pg_advisory_lock key of the poller lease


class LeaderLease:
    def __init__(self, database_url: str, key: int = POLLER_LOCK_KEY):
        # asyncpg takes the plain postgresql:// form of the service's URL.
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._key = key
        self._connection: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        """True when this replica now holds the lease; release() follows either way."""
        self._connection = await asyncpg.connect(self._dsn)
        return await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self._key)

    async def check(self) -> None:
        """Raises when the lease's connection, and with it the lease, is gone."""
        if self._connection is None:
            raise ConnectionError("the poller lease is not held")
        await self._connection.fetchval("SELECT 1")

    def release(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None
