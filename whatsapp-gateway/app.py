"""whatsapp-gateway: builds every dependency once and runs the HTTP API and the workers in one process.

Workers: the poller (Wappi -> incoming_messages / voice_transcription), the outbox repair loop,
the sender (outgoing_messages -> Wappi) and the voice worker (voice_transcription -> incoming_messages).
"""

import asyncio
import sys
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from functools import partial
from typing import Any

import uvicorn
from fastapi import FastAPI
from loguru import logger

from api import dead_letters, docs, health
from api.deps import Runtime
from api.rate_limit import SlidingWindowLimiter, install_rate_limit
from config.database import create_engine, create_session_factory
from config.queue import Contract, Publisher, QueueNames, connect, declare_all, start_consumer
from config.settings import ConfigurationError, Settings, load_settings
from services.outbox import REPAIR_INTERVAL_S, run_outbox
from services.polling_service import PollerDeps, run_poller
from services.sender_service import SenderDeps, handle_outgoing
from services.transcriber import Transcriber
from services.voice_service import VoiceDeps, handle_voice
from services.wappi_client import WappiClient
from utils.helpers import service_clock
from utils.liveness import Liveness
from utils.logger import setup_logging
from utils.metrics import GatewayMetrics

SENDER_PREFETCH = 32
VOICE_PREFETCH = 4  # downloads are serialised per profile anyway; this bounds parallel Gemini calls
# A loop that has not completed a round for this many intervals (at least a minute) is stalled.
STALL_ROUNDS = 10
STALL_FLOOR_S = 60.0


async def start_runtime(settings: Settings, clock: Callable[[], datetime]) -> Runtime:
    metrics = GatewayMetrics()
    engine = create_engine(settings.DATABASE_URL)
    connection = await connect(settings.RABBITMQ_URL)
    queues = QueueNames.from_settings(settings)
    topology = await connection.channel()
    await declare_all(topology, queues)
    await topology.close()
    runtime = Runtime(
        settings=settings,
        clock=clock,
        metrics=metrics,
        engine=engine,
        sessions=create_session_factory(engine),
        connection=connection,
        publisher=await Publisher.open(connection),
        queues=queues,
        wappi=WappiClient(
            base_url=settings.WAPPI_BASE_URL,
            token=settings.WAPPI_TOKEN,
            profile_id=settings.WAPPI_PROFILE_ID,
            metrics=metrics,
            attempts=settings.WAPPI_RETRY_ATTEMPTS,
            backoff_initial=settings.WAPPI_RETRY_BACKOFF_SECONDS,
        ),
        transcriber=Transcriber(
            api_key=settings.GEMINI_API_KEY, model=settings.GEMINI_MODEL, base_url=settings.GEMINI_BASE_URL
        ),
        outgoing_contract=Contract.load("outgoing"),
        liveness=Liveness(clock),
    )
    await _start_workers(runtime)
    logger.info("{} started: polling every {}s", settings.PROJECT_NAME, settings.POLLING_INTERVAL)
    return runtime


async def _start_workers(rt: Runtime) -> None:
    poller = PollerDeps(
        wappi=rt.wappi,
        sessions=rt.sessions,
        publisher=rt.publisher,
        queues=rt.queues,
        metrics=rt.metrics,
        tz=rt.settings.tz,
        clock=rt.clock,
    )
    lease_dsn = rt.settings.DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    interval = rt.settings.POLLING_INTERVAL
    _start_loop(
        rt,
        "poller",
        run_poller(
            poller, lease_dsn=lease_dsn, interval=interval, heartbeat=partial(rt.liveness.beat, "poller")
        ),
        interval,
    )
    _start_loop(
        rt,
        "outbox",
        run_outbox(
            rt.sessions,
            rt.publisher,
            rt.queues,
            clock=rt.clock,
            heartbeat=partial(rt.liveness.beat, "outbox"),
        ),
        REPAIR_INTERVAL_S,
    )

    sender = SenderDeps(wappi=rt.wappi, sessions=rt.sessions, metrics=rt.metrics, clock=rt.clock)
    channel = await start_consumer(
        rt.connection,
        rt.queues.outgoing,
        contract=rt.outgoing_contract,
        handler=partial(handle_outgoing, deps=sender),
        publisher=rt.publisher,
        prefetch=SENDER_PREFETCH,
        max_attempts=rt.settings.MAX_DELIVERY_ATTEMPTS,
        retry_delay=rt.settings.RETRY_DELAY_SECONDS,
    )
    rt.consumer_channels.append(channel)
    rt.liveness.watch_consumer("sender", channel)
    voice = VoiceDeps(
        wappi=rt.wappi,
        transcriber=rt.transcriber,
        sessions=rt.sessions,
        publisher=rt.publisher,
        queues=rt.queues,
        metrics=rt.metrics,
        clock=rt.clock,
    )
    channel = await start_consumer(
        rt.connection,
        rt.queues.voice,
        contract=Contract.load("voice"),
        handler=partial(handle_voice, deps=voice),
        publisher=rt.publisher,
        prefetch=VOICE_PREFETCH,
        max_attempts=rt.settings.MAX_DELIVERY_ATTEMPTS,
        retry_delay=rt.settings.RETRY_DELAY_SECONDS,
    )
    rt.consumer_channels.append(channel)
    rt.liveness.watch_consumer("voice", channel)


def _start_loop(rt: Runtime, name: str, loop: Coroutine[Any, Any, None], interval: float) -> None:
    task = asyncio.create_task(loop, name=name)
    task.add_done_callback(_report_end)
    rt.tasks.append(task)
    rt.liveness.watch_loop(name, task, stall_after=max(STALL_FLOOR_S, STALL_ROUNDS * interval))


def _report_end(task: asyncio.Task) -> None:
    # The loops never return on their own: an end that is not a shutdown is a bug worth a loud line.
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).critical("Worker {} died; /health says 503", task.get_name())


async def stop_runtime(rt: Runtime) -> None:
    for channel in rt.consumer_channels:
        with suppress(Exception):
            await channel.close()
    for task in rt.tasks:
        task.cancel()
    await asyncio.gather(*rt.tasks, return_exceptions=True)
    with suppress(Exception):
        await rt.publisher.close()
    with suppress(Exception):
        await rt.connection.close()
    await rt.wappi.close()
    await rt.transcriber.close()
    await rt.engine.dispose()
    logger.info("{} stopped", rt.settings.PROJECT_NAME)


def create_app(settings: Settings, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The service; `clock` defaults to the machine's UTC now moved by CLOCK_OFFSET_SECONDS."""
    clock = clock or service_clock(settings.CLOCK_OFFSET_SECONDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = await start_runtime(settings, clock)
        try:
            yield
        finally:
            await stop_runtime(app.state.runtime)

    # FastAPI's own /docs, /redoc and /openapi.json are open to all: api/docs.py serves them behind the key.
    app = FastAPI(
        title=settings.PROJECT_NAME, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.include_router(health.router)
    app.include_router(dead_letters.router)
    app.include_router(docs.router)
    install_rate_limit(app, SlidingWindowLimiter(settings.RATE_LIMIT_PER_MINUTE))
    return app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        sys.exit(2)
    setup_logging(settings.LOG_LEVEL, settings.secrets)
    app = create_app(settings, service_clock(settings.CLOCK_OFFSET_SECONDS))
    uvicorn.run(app, host="0.0.0.0", port=settings.PORT, log_config=None)


if __name__ == "__main__":
    main()
