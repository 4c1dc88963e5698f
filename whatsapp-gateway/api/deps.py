"""What the HTTP layer needs from the running service, and the admin key check."""

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncEngine

from config.database import SessionFactory
from config.queue import Contract, Publisher, QueueNames
from config.settings import Settings
from services.transcriber import Transcriber
from services.wappi_client import WappiClient
from utils.liveness import Liveness
from utils.metrics import GatewayMetrics


@dataclass
class Runtime:
    """Everything app.py builds at start-up; the lifespan keeps it on app.state."""

    settings: Settings
    clock: Callable[[], datetime]
    metrics: GatewayMetrics
    engine: AsyncEngine
    sessions: SessionFactory
    connection: AbstractRobustConnection
    publisher: Publisher
    queues: QueueNames
    wappi: WappiClient
    transcriber: Transcriber
    outgoing_contract: Contract
    liveness: Liveness
    tasks: list[asyncio.Task] = field(default_factory=list)
    wappi_health: tuple[float, str | None] = (0.0, None)  # when /health last asked Wappi, and the answer
    consumer_channels: list[AbstractChannel] = field(default_factory=list)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# Declared as a security scheme: the OpenAPI map lists it, and Swagger's Authorize button sends the header.
api_key_header = APIKeyHeader(
    name="X-API-Key", description="ADMIN_API_KEY: every endpoint but /health needs it", auto_error=False
)


def require_api_key(runtime: RuntimeDep, x_api_key: Annotated[str | None, Security(api_key_header)]) -> None:
    expected = runtime.settings.ADMIN_API_KEY.encode("utf-8")
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode("utf-8"), expected):
        raise HTTPException(status_code=401, detail="Missing or invalid X-API-Key header")


ApiKey = Depends(require_api_key)
