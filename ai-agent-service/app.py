"""ai-agent-service: builds every dependency once (start_runtime) and runs the HTTP API and the workers in one
process: the incoming_messages consumer, the outbox repair loop, the follow-up scheduler, the CRM delivery."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from functools import partial

from fastapi import FastAPI
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import console
from api import calls, chat_control, contacts, dead_letters, health
from api.deps import ApiKey
from config.database import create_engine
from config.prompts import load_prompts
from config.queue import CONTRACTS_DIR
from config.runtime import Runtime
from config.settings import Settings
from console.auth import ConsoleAuth, console_signing_key
from service_kit.app import runtime_lifespan, service_app
from service_kit.clock import Clock, offset_clock
from service_kit.outbox import REPAIR_INTERVAL_S, run_repair_loop
from service_kit.retention import RETENTION_INTERVAL_S, start_retention
from service_kit.runtime import ServiceRuntime
from service_kit.settings import ConfigurationError, load_settings
from service_kit.startup import serve
from services.ai_sales_agent import KnowledgeSearch
from services.bitrix24_client import Bitrix24Client
from services.crm_delivery import POLL_INTERVAL_S, CrmDeps, run_crm_delivery
from services.crm_events import crm_session_info
from services.crm_webhook import CrmWebhookClient
from services.follow_up_scheduler import FollowUpDeps, run_follow_up_scheduler
from services.gemini_client import GeminiClient, GeminiRetries
from services.knowledge_base import KnowledgeBase
from services.message_consumer import AgentDeps, consume_incoming
from services.notifications import NotificationOutbox
from services.outbox import BotMessageOutbox
from services.prompt_versions import PROMPT_REFRESH_S, refresh_live_versions, run_prompt_refresh
from services.reminders import CalendarDeps, run_calendar
from services.retention import purge_older_than
from services.work_slots import WorkSlots
from utils.metrics import AgentMetrics
from utils.prompt_loader import PromptError
from utils.timezone_helper import WorkingHours

# A loop that has not completed a round for this many intervals (at least ten minutes: one follow-up touch
# may wait that long on Gemini's retries) is stalled, and /health says 503.
STALL_ROUNDS = 10
STALL_FLOOR_S = 600.0


async def start_runtime(
    settings: Settings, clock: Clock, *, gemini_retries: GeminiRetries = GeminiRetries()
) -> Runtime:
    """Everything the service runs on, built once, with the consumer and the loops started (tests make
    `gemini_retries` quick)."""
    metrics = AgentMetrics()
    prompts = load_prompts(settings.PROMPTS_PATH, settings.BUSINESS_NAME)
    # Indexing reads every PDF that is not cached yet: off the event loop.
    base = await asyncio.to_thread(
        partial(KnowledgeBase, cache_enabled=settings.PDF_CACHE_ENABLED, clock=clock),
        settings.KNOWLEDGE_BASE_PATH,
    )
    knowledge = KnowledgeSearch(base)
    base = await ServiceRuntime.open(settings, clock, create_engine(settings.DATABASE_URL), CONTRACTS_DIR)
    sessions, publisher, queues = base.sessions, base.publisher, base.queues
    await refresh_live_versions(sessions, prompts)  # the prompts as last edited in the console
    # Every session records the CRM events of what it commits for the configured CRMs (none: nothing).
    sessions.configure(info=crm_session_info(settings.crm_targets()))
    outbox = BotMessageOutbox(queues["outgoing_messages"].name)
    notifications = NotificationOutbox(queues["outgoing_messages"].name)
    llm = GeminiClient(
        api_key=settings.GEMINI_API_KEY.get_secret_value(),
        model=settings.GEMINI_MODEL,
        base_url=settings.GEMINI_BASE_URL,
        sessions=sessions,
        metrics=metrics,
        retries=gemini_retries,
        clock=clock,
    )
    hours = WorkingHours(settings.WORKING_HOURS_START, settings.WORKING_HOURS_END, settings.TIMEZONE)
    agent = AgentDeps(
        sessions=sessions,
        publisher=publisher,
        outbox=outbox,
        llm=llm,
        knowledge=knowledge,
        moderator_prompt=prompts.moderator,
        sales_prompt=prompts.sales_agent,
        max_context_messages=settings.MAX_CONTEXT_MESSAGES,
        hours=hours,
        clock=clock,
        metrics=metrics,
        limits=settings.chat_limits(),
        calls=settings.call_policy(),
        notification_outbox=notifications,
        concurrency=settings.AGENT_CONCURRENCY,
        slots=WorkSlots(settings.AGENT_CPU_SLOTS),
    )
    follow_ups = FollowUpDeps(
        sessions=sessions,
        publisher=publisher,
        outbox=outbox,
        llm=llm,
        prompt=prompts.follow_up,
        intervals=tuple(settings.FOLLOW_UP_INTERVALS),
        hours=hours,
        max_context_messages=settings.MAX_CONTEXT_MESSAGES,
        knowledge=knowledge,
        clock=clock,
        limits=settings.chat_limits(),
    )
    consumer = await consume_incoming(
        base.connection,
        queues,
        agent,
        max_attempts=settings.MAX_DELIVERY_ATTEMPTS,
        retry_delay_s=settings.RETRY_DELAY_SECONDS,
    )
    calendar = CalendarDeps(
        sessions=sessions,
        publisher=publisher,
        outbox=outbox,
        notification_outbox=notifications,
        hours=hours,
        policy=agent.calls,
        digest_time=settings.DIGEST_TIME,
        clock=clock,
    )
    runtime = Runtime(
        **base.parts(),
        metrics=metrics,
        llm=llm,
        knowledge=knowledge,
        prompts=prompts,
        agent=agent,
        follow_ups=follow_ups,
        calendar=calendar,
        consumer=consumer,
        crm=_crm_delivery(settings, sessions),
        console=_console_auth(settings, sessions, clock),
    )
    _start_workers(runtime)
    logger.info(
        "{} started: model {}, consuming {}",
        settings.PROJECT_NAME,
        settings.GEMINI_MODEL,
        queues["incoming_messages"].name,
    )
    return runtime


def _crm_delivery(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> CrmDeps | None:
    """The CRM clients the events go to; None when no CRM is configured."""
    if not settings.crm_targets():
        return None
    webhook = None
    if settings.CRM_WEBHOOK_URL and settings.CRM_WEBHOOK_SECRET:
        webhook = CrmWebhookClient(settings.CRM_WEBHOOK_URL, settings.CRM_WEBHOOK_SECRET.get_secret_value())
    bitrix24 = None
    if settings.BITRIX24_WEBHOOK_URL:
        bitrix24 = Bitrix24Client(settings.BITRIX24_WEBHOOK_URL.get_secret_value())
    return CrmDeps(sessions, webhook=webhook, bitrix24=bitrix24)


def _console_auth(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> ConsoleAuth:
    password = settings.console_password()
    return ConsoleAuth(
        password=password,
        signing_key=console_signing_key(settings.ADMIN_API_KEY.get_secret_value(), password),
        session_lifetime=timedelta(hours=settings.CONSOLE_SESSION_HOURS),
        max_failures=settings.CONSOLE_MAX_FAILED_SIGN_INS,
        lockout=timedelta(minutes=settings.CONSOLE_LOCKOUT_MINUTES),
        sessions=sessions,
        clock=clock,
    )


def _start_workers(rt: Runtime) -> None:
    rt.liveness.watch_consumer("consumer", rt.consumer)
    rt.workers["outbox"] = rt.liveness.start_loop(
        "outbox",
        run_repair_loop(
            rt.sessions, rt.publisher, rt.agent.outbox, heartbeat=partial(rt.liveness.beat, "outbox")
        ),
        stall_after=_stall_after(REPAIR_INTERVAL_S),
    )
    rt.workers["notifications"] = rt.liveness.start_loop(
        "notifications",
        run_repair_loop(
            rt.sessions,
            rt.publisher,
            rt.agent.notification_outbox,
            heartbeat=partial(rt.liveness.beat, "notifications"),
        ),
        stall_after=_stall_after(REPAIR_INTERVAL_S),
    )
    rt.workers["prompts"] = rt.liveness.start_loop(
        "prompts",
        run_prompt_refresh(rt.sessions, rt.prompts, heartbeat=partial(rt.liveness.beat, "prompts")),
        stall_after=_stall_after(PROMPT_REFRESH_S),
    )
    calendar_interval = rt.settings.CALENDAR_CHECK_INTERVAL_SECONDS
    rt.workers["calendar"] = rt.liveness.start_loop(
        "calendar",
        run_calendar(
            rt.calendar, interval=calendar_interval, heartbeat=partial(rt.liveness.beat, "calendar")
        ),
        stall_after=_stall_after(calendar_interval),
    )
    if rt.settings.ENABLE_FOLLOW_UPS:
        interval = rt.settings.FOLLOW_UP_CHECK_INTERVAL_SECONDS
        rt.workers["follow_ups"] = rt.liveness.start_loop(
            "follow_ups",
            run_follow_up_scheduler(
                rt.follow_ups, interval=interval, heartbeat=partial(rt.liveness.beat, "follow_ups")
            ),
            stall_after=_stall_after(interval),
        )
    rt.workers["retention"] = start_retention(
        rt.liveness,
        partial(purge_older_than, rt.sessions),
        clock=rt.clock,
        days=rt.settings.RETENTION_DAYS,
        stall_after=_stall_after(RETENTION_INTERVAL_S),
    )
    if rt.crm is not None:
        rt.workers["crm"] = rt.liveness.start_loop(
            "crm",
            run_crm_delivery(rt.crm, heartbeat=partial(rt.liveness.beat, "crm")),
            stall_after=_stall_after(POLL_INTERVAL_S),
        )


def _stall_after(interval: float) -> float:
    return max(STALL_FLOOR_S, STALL_ROUNDS * interval)


async def stop_runtime(rt: Runtime) -> None:
    await rt.consumer.stop()
    await rt.liveness.stop_loops()
    if rt.crm is not None:
        await rt.crm.aclose()
    await rt.llm.aclose()
    await rt.close()
    logger.info("{} stopped", rt.settings.PROJECT_NAME)


def create_app(
    settings: Settings, clock: Clock | None = None, *, gemini_retries: GeminiRetries = GeminiRetries()
) -> FastAPI:
    """The service; `clock` defaults to the machine's UTC now moved by CLOCK_OFFSET_SECONDS."""
    start = partial(
        start_runtime,
        settings,
        clock or offset_clock(settings.CLOCK_OFFSET_SECONDS),
        gemini_retries=gemini_retries,
    )
    app = service_app(
        settings.PROJECT_NAME,
        runtime_lifespan(start, stop_runtime),
        [
            health.router,
            contacts.router,
            chat_control.router,
            calls.router,
            dead_letters.router,
            console.router,
        ],
        api_key=ApiKey,
        per_minute=settings.RATE_LIMIT_PER_MINUTE,
    )
    for exception, handler in console.EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exception, handler)
    return app


def main() -> None:
    try:
        settings = load_settings(Settings)
        # A broken prompt stops the start here, not a reply later.
        load_prompts(settings.PROMPTS_PATH, settings.BUSINESS_NAME)
    except ConfigurationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        sys.exit(2)
    except PromptError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    serve(create_app, settings, port=settings.PORT, log_level=settings.LOG_LEVEL.lower())


if __name__ == "__main__":
    main()
