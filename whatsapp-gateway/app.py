"""whatsapp-gateway: builds every dependency once and runs the HTTP API and the workers in one process.

Workers: the poller (Wappi -> incoming_messages / voice_transcription), the outbox repair loop,
the sender (outgoing_messages -> Wappi) and the voice worker (voice_transcription -> incoming_messages);
in webhook mode (WAPPI_WEBHOOK_SECRET set) also the webhook worker, which takes in what Wappi pushed.
"""

import sys
from functools import partial

from fastapi import FastAPI
from loguru import logger

from api import admin, health, webhooks
from api.deps import ApiKey, Runtime, broker_connection, replayable_queues
from config.database import create_engine
from config.queue import CONTRACTS_DIR
from config.settings import Settings
from service_kit.app import runtime_lifespan, service_app
from service_kit.clock import Clock, offset_clock
from service_kit.consumer import start_consumer
from service_kit.dead_letters import dead_letters_router
from service_kit.outbox import REPAIR_INTERVAL_S, run_repair_loop
from service_kit.retention import RETENTION_INTERVAL_S, start_retention
from service_kit.runtime import ServiceRuntime
from service_kit.settings import ConfigurationError, load_settings
from service_kit.startup import serve
from services.forget import handle_erasure
from services.intake_limit import IntakeLimit
from services.leader_lease import LeaderLease
from services.outbox import MessageLogOutbox
from services.poll_pace import PollPace
from services.polling_service import PollerDeps, run_poller
from services.queue_bodies import ContactErasure, OutgoingMessage, VoiceTask
from services.retention import purge_older_than
from services.sender_service import SenderDeps, handle_outgoing
from services.transcriber import Transcriber
from services.voice_service import VoiceDeps, handle_voice
from services.wappi_client import WappiClient
from services.webhook_service import SWEEP_INTERVAL_S, WebhookDeps, run_webhook_worker
from utils.metrics import GatewayMetrics

SENDER_PREFETCH = 32
VOICE_PREFETCH = 4  # downloads are serialised per profile anyway; this bounds parallel Gemini calls
ERASURES_PREFETCH = 4  # rare, and each a few short deletes
# A loop that has not completed a round for this many intervals (at least a minute) is stalled.
STALL_ROUNDS = 10
STALL_FLOOR_S = 60.0


async def start_runtime(settings: Settings, clock: Clock) -> Runtime:
    base = await ServiceRuntime.open(settings, clock, create_engine(settings.DATABASE_URL), CONTRACTS_DIR)
    metrics = GatewayMetrics()
    runtime = Runtime(
        **base.parts(),
        metrics=metrics,
        wappi=WappiClient(
            base_url=settings.WAPPI_BASE_URL,
            token=settings.WAPPI_TOKEN.get_secret_value(),
            profile_id=settings.WAPPI_PROFILE_ID,
            metrics=metrics,
            attempts=settings.WAPPI_RETRY_ATTEMPTS,
            backoff_initial=settings.WAPPI_RETRY_BACKOFF_SECONDS,
        ),
        transcriber=Transcriber(
            api_key=settings.GEMINI_API_KEY.get_secret_value(),
            model=settings.GEMINI_MODEL,
            base_url=settings.GEMINI_BASE_URL,
        ),
    )
    outbox = MessageLogOutbox(base.queues, clock)
    _start_loops(runtime, outbox)
    await _start_consumers(runtime, outbox)
    logger.info("{} started: polling every {}s", settings.PROJECT_NAME, settings.POLLING_INTERVAL)
    if settings.WAPPI_WEBHOOK_SECRET is not None:
        logger.info(
            "Webhook mode: Wappi pushes to /webhooks/wappi/<WAPPI_WEBHOOK_SECRET>; polling every {}s while "
            "pushes arrive",
            settings.WAPPI_WEBHOOK_POLL_INTERVAL,
        )
    return runtime


def _stall_after(interval: float) -> float:
    return max(STALL_FLOOR_S, STALL_ROUNDS * interval)


def _start_loops(rt: Runtime, outbox: MessageLogOutbox) -> None:
    poller = PollerDeps(rt.wappi, rt.sessions, rt.publisher, outbox, rt.metrics, rt.settings.tz, rt.clock)
    interval = rt.settings.POLLING_INTERVAL
    webhook_mode = rt.settings.WAPPI_WEBHOOK_SECRET is not None
    pace = PollPace(rt.sessions, rt.clock, rt.settings.WAPPI_WEBHOOK_POLL_INTERVAL) if webhook_mode else None
    intake = IntakeLimit(rt.connection, rt.queues["incoming_messages"], rt.settings.MAX_INCOMING_BACKLOG)
    rt.liveness.start_loop(
        "poller",
        run_poller(
            poller,
            lease=LeaderLease(rt.settings.DATABASE_URL),
            interval=interval,
            heartbeat=partial(rt.liveness.beat, "poller"),
            pace=pace,
            intake=intake,
        ),
        stall_after=_stall_after(interval),
    )
    if webhook_mode:
        pushes = WebhookDeps(rt.sessions, rt.publisher, outbox, rt.metrics, rt.settings.tz, rt.clock)
        rt.liveness.start_loop(
            "webhooks",
            run_webhook_worker(pushes, rt.pushes_arrived, heartbeat=partial(rt.liveness.beat, "webhooks")),
            stall_after=_stall_after(SWEEP_INTERVAL_S),
        )
    start_retention(
        rt.liveness,
        partial(purge_older_than, rt.sessions),
        clock=rt.clock,
        days=rt.settings.RETENTION_DAYS,
        stall_after=_stall_after(RETENTION_INTERVAL_S),
    )
    rt.liveness.start_loop(
        "outbox",
        run_repair_loop(rt.sessions, rt.publisher, outbox, heartbeat=partial(rt.liveness.beat, "outbox")),
        stall_after=_stall_after(REPAIR_INTERVAL_S),
    )


async def _start_consumers(rt: Runtime, outbox: MessageLogOutbox) -> None:
    sender = SenderDeps(
        wappi=rt.wappi,
        sessions=rt.sessions,
        metrics=rt.metrics,
        clock=rt.clock,
        sends_per_minute=rt.settings.MAX_SENDS_PER_MINUTE,
        manager_phones=rt.settings.manager_phones,
    )
    voice = VoiceDeps(
        wappi=rt.wappi,
        transcriber=rt.transcriber,
        sessions=rt.sessions,
        publisher=rt.publisher,
        outbox=outbox,
        metrics=rt.metrics,
        clock=rt.clock,
        max_voice_seconds=rt.settings.MAX_VOICE_SECONDS,
        max_voice_bytes=rt.settings.MAX_VOICE_BYTES,
    )
    workers = {
        "sender": (
            "outgoing_messages",
            OutgoingMessage,
            partial(handle_outgoing, deps=sender),
            SENDER_PREFETCH,
        ),
        "voice": ("voice_transcription", VoiceTask, partial(handle_voice, deps=voice), VOICE_PREFETCH),
        "erasures": (
            "contact_erasures",
            ContactErasure,
            partial(handle_erasure, sessions=rt.sessions),
            ERASURES_PREFETCH,
        ),
    }
    for name, (contract, model, handler, prefetch) in workers.items():
        rt.consumers[name] = await start_consumer(
            rt.connection,
            rt.queues[contract],
            rt.queues.contracts[contract],
            model=model,
            handler=handler,
            publisher=rt.publisher,
            prefetch=prefetch,
            max_attempts=rt.settings.MAX_DELIVERY_ATTEMPTS,
            retry_delay_s=rt.settings.RETRY_DELAY_SECONDS,
        )
        rt.liveness.watch_consumer(name, rt.consumers[name])


async def stop_runtime(rt: Runtime) -> None:
    for consumer in rt.consumers.values():
        await consumer.stop()
    await rt.liveness.stop_loops()
    await rt.wappi.close()
    await rt.transcriber.close()
    await rt.close()
    logger.info("{} stopped", rt.settings.PROJECT_NAME)


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The service; `clock` defaults to the machine's UTC now moved by CLOCK_OFFSET_SECONDS."""
    clock = clock or offset_clock(settings.CLOCK_OFFSET_SECONDS)

    async def start() -> Runtime:
        return await start_runtime(settings, clock)

    return service_app(
        settings.PROJECT_NAME,
        runtime_lifespan(start, stop_runtime),
        [
            health.router,
            admin.router,
            webhooks.router,
            dead_letters_router(replayable_queues, broker_connection, ApiKey),
        ],
        api_key=ApiKey,
        per_minute=settings.RATE_LIMIT_PER_MINUTE,
        own_limits={"/webhooks/": settings.WAPPI_WEBHOOK_RATE_LIMIT_PER_MINUTE},
    )


def main() -> None:
    try:
        settings = load_settings(Settings)
    except ConfigurationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        sys.exit(2)
    serve(create_app, settings, port=settings.PORT, log_config=None)


if __name__ == "__main__":
    main()
