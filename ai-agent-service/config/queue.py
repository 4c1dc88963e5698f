"""The broker: one robust connection, and the system's queues as contracts/ describes them (service_kit
declares their topology; this service only says where contracts/ is and what the queues are called)."""

from __future__ import annotations

from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from config.settings import Settings
from service_kit.queues import Queues, declare_topology

# The repo root's contracts/: ../contracts next to the service here, /app/contracts in Docker.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def load_queues(settings: Settings) -> Queues:
    return Queues.load(CONTRACTS_DIR, settings.queue_names())


async def connect(url: str, queues: Queues) -> AbstractRobustConnection:
    """A robust connection with every queue declared (the voice queue too, so either service may start
    first)."""
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    await declare_topology(channel, queues.by_contract.values())
    await channel.close()
    return connection
