"""Test infrastructure: a fresh PostgreSQL database and unique queue names per session (real servers),
the sandbox (fake Wappi + Gemini) as a subprocess, and the gateway itself in-process."""

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from loguru import logger
from sqlalchemy import select, text

from app import create_app
from config.database import create_engine
from config.queue import CONTRACTS_DIR, load_queues
from config.settings import Settings
from models.message_log import MessageLog
from service_kit.clock import offset_clock
from service_kit.logs import setup_logging
from service_kit.publisher import Outgoing, Publisher
from service_kit.queues import Queues, declare_topology
from service_kit.runtime import session_factory

SERVICE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = SERVICE_DIR.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:5432/postgres"
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
WAPPI_TOKEN = "test-wappi-token-5f1c"
GEMINI_KEY = "test-gemini-key-93ab"
ADMIN_KEY = "test-admin-key-7d2e"
RUN_ID = uuid.uuid4().hex[:8]
CONTRACTS = Queues.load(CONTRACTS_DIR).contracts  # by contract name: incoming_messages, ...
# What a gateway process started by a test inherits: PATH, and PYTHONPATH when it points at a kit checkout.
PROCESS_ENV = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"whatsapp_gateway_test_{RUN_ID}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{name}"
    config = Config(str(SERVICE_DIR / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    # env.py runs its own event loop: give it a thread of its own.
    await asyncio.to_thread(command.upgrade, config, "head")
    yield url
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def sandbox_url() -> Any:
    port = _free_port()
    process = subprocess.Popen(
        [str(VENV_PYTHON), "-m", "sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/sandbox/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sandbox did not start: {process.stderr.read().decode(errors='replace')}")
        time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def settings(database_url: str, sandbox_url: str) -> Settings:
    return Settings(
        _env_file=None,
        DATABASE_URL=database_url,
        RABBITMQ_URL=RABBITMQ_URL,
        WAPPI_TOKEN=WAPPI_TOKEN,
        WAPPI_PROFILE_ID="test-profile",
        WAPPI_BASE_URL=sandbox_url,
        GEMINI_API_KEY=GEMINI_KEY,
        GEMINI_BASE_URL=sandbox_url,
        GEMINI_MODEL="gemini-2.5-pro",
        ADMIN_API_KEY=ADMIN_KEY,
        QUEUE_INCOMING_MESSAGES=f"incoming_messages_{RUN_ID}",
        QUEUE_OUTGOING_MESSAGES=f"outgoing_messages_{RUN_ID}",
        QUEUE_VOICE_TRANSCRIPTION=f"voice_transcription_{RUN_ID}",
        QUEUE_CONTACT_ERASURES=f"contact_erasures_{RUN_ID}",
        POLLING_INTERVAL=0.2,
        # Production counts and shapes, shorter waits: a retried message comes back in half a second.
        RETRY_DELAY_SECONDS=0.5,
        # Fewer deliveries than production's 30: the give-up scenarios reach the DLQ in seconds.
        MAX_DELIVERY_ATTEMPTS=5,
        WAPPI_RETRY_BACKOFF_SECONDS=0.05,
        # Production's 30 a minute would space the scenarios' sends 2 s apart; test_send_rate sets its own.
        MAX_SENDS_PER_MINUTE=6000,
    )


@dataclass(frozen=True)
class QueueNames:
    """The real names of this run's queues; each has its `<name>.dlq` and `<name>.retry`."""

    incoming: str
    outgoing: str
    voice: str


@pytest.fixture(scope="session")
def topology(settings: Settings) -> Queues:
    return load_queues(settings)


@pytest.fixture(scope="session")
def queues(topology: Queues) -> QueueNames:
    return QueueNames(
        incoming=topology["incoming_messages"].name,
        outgoing=topology["outgoing_messages"].name,
        voice=topology["voice_transcription"].name,
    )


@pytest.fixture(scope="session")
async def sessions(database_url: str):
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def broker(topology: Queues) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    channel = await connection.channel()
    await declare_topology(channel, topology.by_contract.values())
    yield connection
    channel = await connection.channel()
    for name in topology.names():
        await channel.queue_delete(name)
    for queue in topology.by_contract.values():
        await channel.exchange_delete(queue.dlx)
    await connection.close()


@pytest.fixture(scope="session")
async def publisher(broker) -> Publisher:
    return await Publisher.open(broker)


Publish = Callable[..., Awaitable[None]]


@pytest.fixture(scope="session")
def publish(publisher: Publisher) -> Publish:
    """Puts a body on a queue (by its real name) as another service would: persistent, confirmed."""

    async def publish(
        queue: str, body: Any, *, message_id: str | None = None, headers: dict[str, Any] | None = None
    ) -> None:
        await publisher.publish(Outgoing(queue, body, message_id=message_id, headers=headers or {}))

    return publish


@pytest.fixture(scope="session")
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        yield client


@pytest.fixture
async def clean(sessions, broker, topology: Queues, sandbox: httpx.AsyncClient) -> None:
    """Every scenario starts as a first start: empty tables (whitelist kept), empty queues, empty chats."""
    async with sessions() as session, session.begin():
        tables = "message_logs, poll_state, chat_cursors, webhook_pushes"
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    channel = await broker.channel()
    for name in topology.names():
        await (await channel.get_queue(name, ensure=False)).purge()
    await channel.close()
    (await sandbox.post("/sandbox/reset")).raise_for_status()
    (await sandbox.delete("/sandbox/faults")).raise_for_status()


@pytest.fixture
def production_logging(tmp_path: Path):
    """Sets logging up as app.py does, files under tmp_path/logs (returned); undone after the test."""

    def setup(secrets: list[str], level: str = "DEBUG") -> Path:
        setup_logging(level, secrets, log_dir=tmp_path / "logs")
        return tmp_path / "logs"

    yield setup
    logger.remove()
    logger.configure(patcher=lambda record: None)
    logger.add(lambda message: sys.stderr.write(message))  # whatever stderr is when a line is written
    logging.basicConfig(handlers=[], force=True)


@pytest.fixture
async def midday(sandbox: httpx.AsyncClient) -> AsyncIterator[Callable[[], datetime]]:
    """A clock at today's 12:00 in Astana, ticking, with the fake Wappi stamping on the same clock: a test
    that reads a day's counts cannot straddle midnight (19:00 UTC)."""
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Almaty"))
    offset = (local.replace(hour=12, minute=0, second=0, microsecond=0) - local).total_seconds()
    (await sandbox.put("/sandbox/clock", json={"offset_seconds": offset})).raise_for_status()
    yield offset_clock(offset)
    (await sandbox.put("/sandbox/clock", json={"offset_seconds": 0})).raise_for_status()


@asynccontextmanager
async def running_gateway(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield app, client


@pytest.fixture
async def gateway(settings: Settings, clean) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with running_gateway(settings) as running:
        yield running


@pytest.fixture
async def gateway_at_midday(
    settings: Settings, clean, midday
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The gateway and the fake Wappi at today's midday in Astana (see `midday`)."""
    async with running_gateway(settings, midday) as running:
        yield running


async def wait_first_poll(sessions, wait_s: float = 10.0) -> None:
    """Until the poller completed a cycle (so its first-start cursor exists)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with sessions() as session:
            if await session.scalar(text("SELECT count(*) FROM poll_state WHERE name = 'last_poll_time'")):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the poller never completed a cycle")


async def inject(sandbox: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await sandbox.post("/sandbox/messages", json=fields)
    response.raise_for_status()
    return response.json()


async def collect(broker, queue: str, *, expect: int, wait_s: float = 5.0, settle: float = 0.0) -> list[Any]:
    """Messages taken (and acked) from `queue`: stops at `expect` (then waits `settle` for extras)
    or after wait_s.
    Each item is the decoded body, with the AMQP message under key "_amqp" when it is a dict."""
    channel = await broker.channel()
    target = await channel.get_queue(queue, ensure=False)
    found: list[Any] = []
    deadline = time.monotonic() + wait_s
    settle_until = None
    try:
        while True:
            message = await target.get(no_ack=False, fail=False)
            if message is not None:
                await message.ack()
                body = json.loads(message.body)
                if isinstance(body, dict):
                    body["_amqp"] = message
                found.append(body)
                if len(found) >= expect and settle_until is None:
                    settle_until = time.monotonic() + settle
                continue
            now = time.monotonic()
            if (settle_until is not None and now >= settle_until) or now >= deadline:
                return found
            await asyncio.sleep(0.05)
    finally:
        await channel.close()


def without_amqp(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "_amqp"}


async def sent_by_bot(sandbox: httpx.AsyncClient, count: int, wait_s: float = 5.0) -> list[dict[str, Any]]:
    """What the bot sent through the fake Wappi, once `count` messages are there (or after wait_s)."""
    deadline = time.monotonic() + wait_s
    while True:
        messages = (await sandbox.get("/sandbox/sent")).json()["messages"]
        if len(messages) >= count or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.05)


async def settled_row(sessions, outgoing_id: str, wait_s: float = 5.0) -> MessageLog | None:
    """The outgoing row once its send is over (Wappi answers before the sender commits the answer)."""
    deadline = time.monotonic() + wait_s
    while True:
        async with sessions() as session:
            row = await session.scalar(select(MessageLog).where(MessageLog.outgoing_id == outgoing_id))
        if (row is not None and row.queue_status != "sending") or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.05)


async def wait_faults_used(sandbox: httpx.AsyncClient, endpoint: str, wait_s: float = 10.0) -> None:
    """Until the sandbox has no fault left on `endpoint` (a counted fault is removed when used up)."""
    deadline = time.monotonic() + wait_s
    while any(f["endpoint"] == endpoint for f in (await sandbox.get("/sandbox/faults")).json()["faults"]):
        if time.monotonic() > deadline:
            raise AssertionError(f"the fault on {endpoint} was never used up")
        await asyncio.sleep(0.05)
