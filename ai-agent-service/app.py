"""ai-agent-service: builds the settings, database, broker, Gemini client, knowledge base and prompts,
then runs the incoming_messages consumer, the outbox loop, the follow-up scheduler and the HTTP API in one
process."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from loguru import logger

from api import api_docs, contacts, dead_letters, health
from api.rate_limit import RateLimitMiddleware
from config.database import create_engine, create_session_factory
from config.queue import Broker, QueueNames
from config.settings import Settings
from service_kit.clock import Clock, offset_clock
from service_kit.logs import setup_logging
from service_kit.settings import ConfigurationError, load_settings
from services.ai_moderator import MODERATOR_PLACEHOLDERS
from services.ai_sales_agent import SALES_PLACEHOLDERS, KnowledgeSearch
from services.follow_up_scheduler import FOLLOW_UP_PLACEHOLDERS, FollowUpDeps, run_follow_up_scheduler
from services.gemini_client import GeminiClient
from services.knowledge_base import KnowledgeBase
from services.message_consumer import AgentDeps, start_consumer
from services.outbox import run_outbox_loop
from utils.prompt_loader import PromptError, PromptTemplate
from utils.timezone_helper import WorkingHours


def load_prompts(settings: Settings) -> dict[str, PromptTemplate]:
    """Every prompt checked now, so a prompt missing a placeholder stops the start, not a reply."""
    folder = settings.PROMPTS_PATH
    return {
        "moderator": PromptTemplate(folder / "moderator_prompt.txt", MODERATOR_PLACEHOLDERS),
        "sales_agent": PromptTemplate(folder / "sales_agent_prompt.txt", SALES_PLACEHOLDERS),
        "follow_up": PromptTemplate(folder / "follow_up_prompt.txt", FOLLOW_UP_PLACEHOLDERS),
    }


def create_app(
    settings: Settings, *, clock: Clock | None = None, gemini_options: dict[str, Any] | None = None
) -> FastAPI:
    """The app; raises PromptError here (before serving) when a prompt file is broken."""
    prompts = load_prompts(settings)
    knowledge = KnowledgeSearch(
        KnowledgeBase(settings.KNOWLEDGE_BASE_PATH, cache_enabled=settings.PDF_CACHE_ENABLED)
    )
    clock = clock or offset_clock(settings.CLOCK_OFFSET_SECONDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL)
        session_factory = create_session_factory(engine)
        names = QueueNames.from_settings(settings)
        broker = await Broker.connect(
            settings.RABBITMQ_URL, names, max_attempts=settings.MAX_DELIVERY_ATTEMPTS
        )
        llm = GeminiClient(
            api_key=settings.GEMINI_API_KEY.get_secret_value(),
            model=settings.GEMINI_MODEL,
            base_url=settings.GEMINI_BASE_URL,
            session_factory=session_factory,
            **(gemini_options or {}),
        )
        agent = AgentDeps(
            session_factory=session_factory,
            broker=broker,
            llm=llm,
            knowledge=knowledge,
            moderator_prompt=prompts["moderator"],
            sales_prompt=prompts["sales_agent"],
            max_context_messages=settings.MAX_CONTEXT_MESSAGES,
            hours=WorkingHours(settings.WORKING_HOURS_START, settings.WORKING_HOURS_END, settings.TIMEZONE),
            clock=clock,
            concurrency=settings.AGENT_CONCURRENCY,
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.agent = agent
        consumer = await start_consumer(agent)
        app.state.consumer = consumer
        outbox = asyncio.create_task(run_outbox_loop(session_factory, broker), name="outbox")
        app.state.workers = {"outbox": outbox}  # /health answers 503 when one of them has ended
        app.state.follow_ups = FollowUpDeps(
            session_factory=session_factory,
            broker=broker,
            llm=llm,
            prompt=prompts["follow_up"],
            intervals=tuple(settings.FOLLOW_UP_INTERVALS),
            hours=agent.hours,
            max_context_messages=settings.MAX_CONTEXT_MESSAGES,
            knowledge=knowledge,
        )
        if settings.ENABLE_FOLLOW_UPS:
            app.state.workers["follow_ups"] = asyncio.create_task(
                run_follow_up_scheduler(
                    app.state.follow_ups, clock=clock, interval=settings.FOLLOW_UP_CHECK_INTERVAL_SECONDS
                ),
                name="follow_ups",
            )
        logger.info(
            "{} started: model {}, consuming {}",
            settings.PROJECT_NAME,
            settings.GEMINI_MODEL,
            names.incoming_messages,
        )
        try:
            yield
        finally:
            await consumer.stop()
            for task in app.state.workers.values():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.close()
            await llm.aclose()
            await engine.dispose()
            logger.info("{} stopped", settings.PROJECT_NAME)

    # The API's map is behind the key like the API itself (api/api_docs.py serves it).
    app = FastAPI(
        title=settings.PROJECT_NAME, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(RateLimitMiddleware, per_minute=settings.RATE_LIMIT_PER_MINUTE)
    app.include_router(health.router)
    app.include_router(contacts.router)
    app.include_router(dead_letters.router)
    app.include_router(api_docs.router)
    return app


def main() -> None:
    try:
        settings = load_settings(Settings)
    except ConfigurationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        sys.exit(2)
    try:
        app = create_app(settings)
    except PromptError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(settings.LOG_LEVEL, settings.secret_values())
    uvicorn.run(app, host="0.0.0.0", port=settings.PORT, log_level=settings.LOG_LEVEL.lower())


if __name__ == "__main__":
    main()
