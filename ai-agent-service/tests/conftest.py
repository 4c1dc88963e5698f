"""Real PostgreSQL and RabbitMQ: a fresh database and unique queue names per test session.
Gemini is faked with respx (tests/gemini_stub.py) or by the sandbox (the `sandbox` fixture: a subprocess)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
import respx
from alembic import command
from alembic.config import Config
from jsonschema import Draft202012Validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import create_app
from config.database import create_engine
from config.prompts import load_prompts
from config.queue import load_queues
from config.settings import Settings
from service_kit import runtime as kit_runtime
from service_kit.consumer import Consumer, Delivery
from service_kit.publisher import Publisher
from service_kit.queues import declare_topology
from services.ai_sales_agent import KnowledgeSearch
from services.follow_up_scheduler import FollowUpDeps
from services.gemini_client import GeminiClient, GeminiRetries
from services.incoming_messages import IncomingMessage
from services.knowledge_base import KnowledgeBase
from services.message_consumer import AgentDeps, Outcome, consume_incoming, handle_incoming
from services.notifications import NotificationOutbox
from services.outbox import BotMessageOutbox
from tests.gemini_stub import GeminiStub, touch_text
from tests.queue_reader import BrokerUnderTest, QueueReader
from utils.metrics import AgentMetrics
from utils.timezone_helper import ASTANA, WorkingHours

SERVICE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = SERVICE_DIR.parent
RUN_ID = uuid.uuid4().hex[:8]
PG_SERVER = "postgres@127.0.0.1:5432"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
GEMINI_URL = "https://gemini.test"
ADMIN_KEY = "test-admin-key-1234"
GEMINI_KEY = "test-gemini-key-5678"
MAX_ATTEMPTS = 5  # deliveries before a failing message is dead-lettered; small so tests reach the DLQ
# Not the sample knowledge base's company: nothing may take the business's name from anywhere but the setting.
BUSINESS_NAME = "ТОО «Береке Логистик»"
# Wednesday 2026-11-25 15:00 in Astana.
WEDNESDAY_3PM = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TABLES = (
    "llm_usage",
    "scheduled_calls",
    "follow_ups",
    "messages",
    "contacts",
    "console_sign_in_failures",
    "prompt_versions",
)


def fixed_clock(moment: datetime = WEDNESDAY_3PM) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"ai_agent_test_{RUN_ID}"
    admin = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://{PG_SERVER}/{name}"
    config = Config(str(SERVICE_DIR / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    yield url
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        DATABASE_URL=database_url,
        RABBITMQ_URL=RABBITMQ_URL,
        GEMINI_API_KEY=GEMINI_KEY,
        GEMINI_BASE_URL=GEMINI_URL,
        ADMIN_API_KEY=ADMIN_KEY,
        BUSINESS_NAME=BUSINESS_NAME,
        QUEUE_INCOMING_MESSAGES=f"incoming_messages_{RUN_ID}",
        QUEUE_OUTGOING_MESSAGES=f"outgoing_messages_{RUN_ID}",
        QUEUE_VOICE_TRANSCRIPTION=f"voice_transcription_{RUN_ID}",
        QUEUE_CONTACT_ERASURES=f"contact_erasures_{RUN_ID}",
        KNOWLEDGE_BASE_PATH=SERVICE_DIR / "knowledge_base",
        PDF_CACHE_ENABLED=False,  # nothing written into the source tree
        PROMPTS_PATH=SERVICE_DIR / "prompts",
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.DATABASE_URL)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return kit_runtime.session_factory(engine)


@pytest.fixture
async def db(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> async_sessionmaker[AsyncSession]:
    """The session factory over an emptied database."""
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return session_factory


@pytest.fixture(scope="session")
async def broker(settings: Settings) -> AsyncIterator[BrokerUnderTest]:
    queues = load_queues(settings)
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    channel = await connection.channel()
    await declare_topology(channel, queues.by_contract.values())
    yield BrokerUnderTest(connection, queues, await Publisher.open(connection))
    for name in queues.names():
        await channel.queue_delete(name)
    for queue in queues.by_contract.values():
        await channel.exchange_delete(queue.dlx)
    await connection.close()


@pytest.fixture
async def queues(broker: BrokerUnderTest) -> QueueReader:
    reader = QueueReader(broker)
    await reader.purge_all()
    return reader


def contract_validator(name: str) -> Draft202012Validator:
    schema = json.loads((REPO_DIR / "contracts" / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("sandbox") / "sandbox.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/sandbox/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.terminate()
        pytest.fail("the sandbox did not start within 30 s")
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox (fake Wappi and Gemini), reset for the test."""
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        (await client.post("/sandbox/reset")).raise_for_status()
        yield client


@pytest.fixture
def gemini() -> AsyncIterator[GeminiStub]:
    with respx.mock(base_url=GEMINI_URL, assert_all_called=False) as router:
        yield GeminiStub(router)


def make_llm(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    base_url: str = GEMINI_URL,
    model: str = "gemini-2.5-pro",
) -> GeminiClient:
    return GeminiClient(
        api_key=GEMINI_KEY,
        model=model,
        base_url=base_url,
        sessions=sessions,
        metrics=AgentMetrics(),
        retries=GeminiRetries(timeout_s=5, attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05),
    )


@pytest.fixture
async def llm(settings: Settings, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[GeminiClient]:
    client = make_llm(settings, db)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def knowledge(settings: Settings) -> KnowledgeSearch:
    return KnowledgeSearch(KnowledgeBase(settings.KNOWLEDGE_BASE_PATH))


def make_agent(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    broker: BrokerUnderTest,
    llm: GeminiClient,
    knowledge: KnowledgeSearch,
    *,
    prompts_dir: Path | None = None,
    clock: Callable[[], datetime] = fixed_clock(),
) -> AgentDeps:
    prompts = load_prompts(prompts_dir or settings.PROMPTS_PATH, settings.BUSINESS_NAME)
    return AgentDeps(
        sessions=sessions,
        publisher=broker.publisher,
        outbox=BotMessageOutbox(broker.queues["outgoing_messages"].name),
        llm=llm,
        knowledge=knowledge,
        moderator_prompt=prompts.moderator,
        sales_prompt=prompts.sales_agent,
        max_context_messages=settings.MAX_CONTEXT_MESSAGES,
        hours=WorkingHours(settings.WORKING_HOURS_START, settings.WORKING_HOURS_END, settings.TIMEZONE),
        clock=clock,
        metrics=AgentMetrics(),
        limits=settings.chat_limits(),
        calls=settings.call_policy(),
        notification_outbox=NotificationOutbox(broker.queues["outgoing_messages"].name),
    )


async def handle(body: dict[str, Any], deps: AgentDeps) -> Outcome:
    """One first delivery of `body`, straight to the handler (the consumer is tested on its own)."""
    delivery = Delivery(body["message_id"], attempt=1, max_attempts=MAX_ATTEMPTS)
    return await handle_incoming(IncomingMessage.model_validate(body), delivery, deps=deps)


async def start_consuming(broker: BrokerUnderTest, deps: AgentDeps) -> Consumer[IncomingMessage]:
    """The incoming_messages consumer, dead-lettering after MAX_ATTEMPTS deliveries."""
    return await consume_incoming(broker.connection, broker.queues, deps, max_attempts=MAX_ATTEMPTS)


@pytest.fixture
def agent(
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    broker: BrokerUnderTest,
    llm: GeminiClient,
    knowledge: KnowledgeSearch,
    queues: QueueReader,
) -> AgentDeps:
    return make_agent(settings, db, broker, llm, knowledge)


@pytest.fixture
def follow_ups(settings, db, broker, llm, gemini, queues, knowledge) -> FollowUpDeps:
    """The follow-up scheduler's deps, Gemini answering touches with touch_text."""
    gemini.sales = touch_text
    return make_follow_ups(settings, db, broker, llm, knowledge)


def make_follow_ups(settings, db, broker, llm, knowledge) -> FollowUpDeps:
    return FollowUpDeps(
        sessions=db,
        publisher=broker.publisher,
        outbox=BotMessageOutbox(broker.queues["outgoing_messages"].name),
        llm=llm,
        prompt=load_prompts(settings.PROMPTS_PATH, settings.BUSINESS_NAME).follow_up,
        intervals=tuple(settings.FOLLOW_UP_INTERVALS),
        hours=WorkingHours(settings.WORKING_HOURS_START, settings.WORKING_HOURS_END, settings.TIMEZONE),
        max_context_messages=settings.MAX_CONTEXT_MESSAGES,
        knowledge=knowledge,
        clock=fixed_clock(),
        limits=settings.chat_limits(),
    )


_counter = iter(range(1, 1_000_000))


def incoming(
    text: str,
    *,
    phone: str = "77011234567",
    message_id: str | None = None,
    at: datetime | None = None,
    first_name: str | None = "Иван",
    business: str | None = None,
    is_voice: bool = False,
) -> dict[str, Any]:
    """An incoming_messages body as the gateway publishes it (Astana +05:00 timestamps)."""
    moment = at or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    body: dict[str, Any] = {
        "message_id": message_id or f"WAMSG{next(_counter):06d}{RUN_ID}",
        "chat_id": f"{phone}@c.us",
        "phone_number": phone,
        "sender_name": first_name,
        "message_text": text,
        "is_voice": is_voice,
        "timestamp": moment.astimezone(ASTANA).isoformat(),
        "contact_info": {
            "FirstName": first_name,
            "FullName": first_name,
            "PushName": None,
            "BusinessName": business,
        },
        "message_type": "voice" if is_voice else "text",
    }
    body["voice_url" if not is_voice else "original_voice_url"] = None if not is_voice else "https://x/f.ogg"
    return body


@pytest.fixture
async def api(settings, db, broker, gemini, queues) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (consumer, workers, HTTP API) with its lifespan, and a client for its API."""
    app = create_app(
        settings,
        clock=fixed_clock(),
        gemini_retries=GeminiRetries(attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as client:
            yield client


@pytest.fixture
async def operator(app) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the console of the test module's `app` fixture."""
    from tests.console_client import signed_in  # imported here: console_client imports this module

    async with signed_in(app) as client:
        yield client
