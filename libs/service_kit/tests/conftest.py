"""Real RabbitMQ and PostgreSQL: queues under names of this run, a fresh database per session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from service_kit.publisher import Publisher
from service_kit.queues import Queues, declare_topology

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
PG = "postgres@127.0.0.1:5432"
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def queues() -> Queues:
    names = {
        c: f"{c}_kit_{RUN_ID}"
        for c in ("incoming_messages", "outgoing_messages", "voice_transcription", "contact_erasures")
    }
    return Queues.load(CONTRACTS, names)


@pytest.fixture(scope="session")
async def connection(queues: Queues) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    channel = await connection.channel()
    await declare_topology(channel, queues.by_contract.values())
    yield connection
    channel = await connection.channel()
    for name in queues.names():
        await channel.queue_delete(name)
    for queue in queues.by_contract.values():
        await channel.exchange_delete(queue.dlx)
    await connection.close()


@pytest.fixture
async def empty_queues(connection, queues: Queues) -> Queues:
    channel = await connection.channel()
    for name in queues.names():
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()
    return queues


@pytest.fixture(scope="session")
async def publisher(connection) -> Publisher:
    return await Publisher.open(connection)


@pytest.fixture(scope="session")
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    name = f"service_kit_test_{RUN_ID}"
    admin = await asyncpg.connect(f"postgresql://{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_async_engine(f"postgresql+asyncpg://{PG}/{name}")
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def take_all(connection, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    channel = await connection.channel()
    declared = await channel.get_queue(queue_name, ensure=False)
    taken = []
    while (message := await declared.get(no_ack=True, fail=False)) is not None:
        taken.append(message)
    await channel.close()
    return taken
