"""Waiting at start-up for the database and the broker: a platform may start a service before either answers
(a first deploy, a restart of the machine). Each failed attempt is one line naming what is unreachable, where
(never the password) and when the next try is; the delays grow to a ceiling and the wait has no end, so the
service comes up by itself once both answer instead of leaving a traceback and an exit code."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import uvicorn
from fastapi import FastAPI
from loguru import logger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service_kit.logs import setup_logging
from service_kit.settings import ServiceSettings

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
# An address that swallows packets must not hold one attempt for minutes (asyncpg's own default is 60 s).
ATTEMPT_TIMEOUT_S = 10.0
# aiormq logs every refused connection itself; the waiting line already says it.
AIORMQ_CONNECTION_LOG = logging.getLogger("aiormq.connection")


def growing_delays(first: float = FIRST_DELAY_S, ceiling: float = MAX_DELAY_S) -> Iterator[float]:
    """first, twice that, ... up to `ceiling`, then `ceiling` for ever."""
    delay = first
    while True:
        yield delay
        delay = min(ceiling, delay * 2)


async def wait_until_reachable(
    what: str, where: str, attempt: Callable[[], Awaitable[None]], delays: Iterable[float] | None = None
) -> None:
    """Returns once `attempt` succeeds; logs one line per failure and sleeps the next of `delays` (without an
    end by default; ConnectionError once a finite `delays` is spent)."""
    failures = 0
    for delay in growing_delays() if delays is None else delays:
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                await attempt()
        except Exception as exc:  # at start-up every way of not answering is worth another try
            failures += 1
            logger.warning(
                "{} at {} is not reachable ({}); next try in {:g} s", what, where, _reason(exc), delay
            )
            await asyncio.sleep(delay)
            continue
        if failures:
            logger.info("{} at {} is reachable after {} failed attempts", what, where, failures)
        return
    raise ConnectionError(f"{what} at {where} is not reachable after {failures} attempts")


async def wait_for_database(database_url: str, delays: Iterable[float] | None = None) -> None:
    await wait_until_reachable(
        "PostgreSQL", _address(database_url, 5432), partial(_database_answers, database_url), delays
    )


async def wait_for_broker(rabbitmq_url: str, delays: Iterable[float] | None = None) -> None:
    await wait_until_reachable(
        "RabbitMQ", _address(rabbitmq_url, 5672), partial(_broker_answers, rabbitmq_url), delays
    )


def wait_before_serving(settings: ServiceSettings) -> None:
    """Blocks until the database and then the broker answer. Runs before the HTTP server starts, where Ctrl-C
    and SIGTERM still stop the process at once (the server holds both back until its start-up is over)."""
    try:
        asyncio.run(_wait_for_both(settings))
    except KeyboardInterrupt:
        sys.exit(130)


def serve(
    create_app: Callable[[Any], FastAPI], settings: ServiceSettings, *, port: int, **uvicorn_options: Any
) -> None:
    """A service's process: its logging, the wait for the database and the broker, then its app on `port`,
    trusting X-Forwarded-For only from FORWARDED_ALLOW_IPS."""
    setup_logging(settings.LOG_LEVEL, settings.secret_values())
    wait_before_serving(settings)
    uvicorn.run(
        create_app(settings),
        host="0.0.0.0",
        port=port,
        loop="uvloop",  # less CPU per message than the stock event loop
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        **uvicorn_options,
    )


async def _wait_for_both(settings: ServiceSettings) -> None:
    await wait_for_database(settings.DATABASE_URL)
    await wait_for_broker(settings.RABBITMQ_URL)


async def _database_answers(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _broker_answers(rabbitmq_url: str) -> None:
    level = AIORMQ_CONNECTION_LOG.level
    AIORMQ_CONNECTION_LOG.setLevel(logging.CRITICAL)
    try:
        connection = await aio_pika.connect(rabbitmq_url, timeout=ATTEMPT_TIMEOUT_S)
    finally:
        AIORMQ_CONNECTION_LOG.setLevel(level)
    await connection.close()


def _address(url: str, default_port: int) -> str:
    """host:port/path of a URL, without its user and password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or default_port}{parts.path}"


def _reason(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error with the statement and a link; the driver's own says it best.
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
