"""What both services' runtimes are built on: the settings, the clock, the database, the broker with the
queues of contracts/queues.json declared, a confirming publisher, and the watch over the workers. Each
service's Runtime extends ServiceRuntime with its own clients and workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service_kit.clock import Clock
from service_kit.liveness import Liveness
from service_kit.publisher import Publisher
from service_kit.queues import Queues, declare_topology
from service_kit.settings import ServiceSettings


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def autocommit_session(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit on their own: for lone reads and lone writes, which need no
    transaction and so save its BEGIN and COMMIT round trips."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    queues: Queues
    connection: AbstractRobustConnection
    publisher: Publisher
    liveness: Liveness

    @classmethod
    async def open(
        cls, settings: ServiceSettings, clock: Clock, engine: AsyncEngine, contracts_dir: Path
    ) -> ServiceRuntime:
        """Connects to the broker once every queue, its DLQ and its retry queue are declared (either service
        may start first)."""
        queues = Queues.load(contracts_dir, settings.queue_names())
        connection = await aio_pika.connect_robust(settings.RABBITMQ_URL)
        channel = await connection.channel()
        await declare_topology(channel, queues.by_contract.values())
        await channel.close()
        return ServiceRuntime(
            settings=settings,
            clock=clock,
            engine=engine,
            sessions=session_factory(engine),
            queues=queues,
            connection=connection,
            publisher=await Publisher.open(connection),
            liveness=Liveness(clock),
        )

    def parts(self) -> dict[str, Any]:
        """The shared fields, to build a service's Runtime from: Runtime(**base.parts(), own=...)."""
        return {f.name: getattr(self, f.name) for f in fields(ServiceRuntime)}

    async def close(self) -> None:
        """After the service stopped its consumers and loops: the broker, then the database."""
        # The broker may already be gone at shutdown.
        with suppress(Exception):
            await self.publisher.close()
        with suppress(Exception):
            await self.connection.close()
        await self.engine.dispose()
