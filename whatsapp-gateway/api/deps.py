"""What the HTTP layer gets from the running service: the Runtime app.py builds, and typed dependencies."""

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from aio_pika.abc import AbstractRobustConnection
from fastapi import Depends, Request
from loguru import logger

from config.queue import CONSUMED, SHORT_NAMES
from config.settings import Settings
from service_kit.api import api_key_dependency
from service_kit.consumer import Consumer
from service_kit.queues import Queue
from service_kit.queues import queue_sizes as broker_queue_sizes
from service_kit.runtime import ServiceRuntime
from services.transcriber import Transcriber
from services.wappi_client import WappiClient
from utils.metrics import GatewayMetrics

BROKER_CHECK_TIMEOUT_S = 5.0


@dataclass
class Runtime(ServiceRuntime):
    """Everything app.py builds at start-up (the shared infrastructure and the gateway's own clients and
    workers); the lifespan keeps it on app.state.runtime."""

    settings: Settings
    metrics: GatewayMetrics
    wappi: WappiClient
    transcriber: Transcriber
    consumers: dict[str, Consumer] = field(default_factory=dict)  # by worker name: "sender", "voice"
    wappi_health: tuple[float, str | None] = (0.0, None)  # when /health last asked Wappi, and the answer
    # Set by the webhook route when it stored a push: the webhook worker takes it in at once.
    pushes_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def queue_sizes(self) -> dict[str, int] | None:
        """Ready messages per queue by its short name (incoming, outgoing, voice), also set on the
        queue_size gauge; None when the broker does not answer."""
        try:
            async with asyncio.timeout(BROKER_CHECK_TIMEOUT_S):
                sizes = await broker_queue_sizes(self.connection, self.queues.by_contract.values())
        except Exception as exc:
            logger.warning("Broker check failed: {}", exc)
            return None
        by_short_name = {short: sizes[self.queues[contract].name] for contract, short in SHORT_NAMES.items()}
        for short, size in by_short_name.items():
            self.metrics.queue_size.labels(short).set(size)
        return by_short_name


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiKey = api_key_dependency(lambda request: get_runtime(request).settings.ADMIN_API_KEY.get_secret_value())


def replayable_queues(runtime: RuntimeDep) -> dict[str, Queue]:
    """The queues whose dead letters this service replays: the ones it consumes."""
    return {contract: runtime.queues[contract] for contract in CONSUMED}


def broker_connection(runtime: RuntimeDep) -> AbstractRobustConnection:
    return runtime.connection
