"""The broker: the connection and the queues of contracts/queues.json under the settings' names, declared."""

from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from config.settings import Settings
from service_kit.queues import Queues, declare_topology

# The repository's contracts/: beside the service here, /app/contracts in the Docker image.
CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
CONSUMED = ("outgoing_messages", "voice_transcription")  # by the sender and by the voice worker
# How /stats and the queue_size gauge name the spec's queues.
SHORT_NAMES = {
    "incoming_messages": "incoming",
    "outgoing_messages": "outgoing",
    "voice_transcription": "voice",
}


def load_queues(settings: Settings) -> Queues:
    return Queues.load(CONTRACTS_DIR, settings.queue_names())


async def connect(settings: Settings, queues: Queues) -> AbstractRobustConnection:
    """A robust connection, once every queue, its DLQ and its retry queue are declared."""
    connection = await aio_pika.connect_robust(settings.RABBITMQ_URL)
    channel = await connection.channel()
    await declare_topology(channel, queues.by_contract.values())
    await channel.close()
    return connection
