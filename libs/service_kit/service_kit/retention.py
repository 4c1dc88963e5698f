"""RETENTION_DAYS: once a day each service deletes the personal data it keeps longer than that (each service
says which rows, in its services/retention.py). The cut-off comes from the service's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import partial

from loguru import logger

from service_kit.liveness import Liveness, run_every

RETENTION_INTERVAL_S = 24 * 3600

Purge = Callable[[datetime], Awaitable[Mapping[str, int]]]


async def purge_once(purge: Purge, *, clock: Callable[[], datetime], days: int) -> Mapping[str, int]:
    """Deletes what is older than `days` by the clock; how many rows went, by table."""
    removed = await purge(clock() - timedelta(days=days))
    counts = ", ".join(f"{table}: {count}" for table, count in removed.items())
    logger.info("Retention: removed what is older than {} days ({})", days, counts)
    return removed


async def run_retention(
    purge: Purge,
    *,
    clock: Callable[[], datetime],
    days: int,
    heartbeat: Callable[[], None],
    interval_s: float = RETENTION_INTERVAL_S,
) -> None:
    """purge_once at start, then every `interval_s`; a failed round is logged and tried at the next."""
    await run_every(
        interval_s,
        partial(purge_once, purge, clock=clock, days=days),
        what="Retention round",
        heartbeat=heartbeat,
    )


def start_retention(
    liveness: Liveness, purge: Purge, *, clock: Callable[[], datetime], days: int, stall_after: float
) -> asyncio.Task:
    """run_retention as a worker loop watched under "retention"."""
    heartbeat = partial(liveness.beat, "retention")
    loop = run_retention(purge, clock=clock, days=days, heartbeat=heartbeat)
    return liveness.start_loop("retention", loop, stall_after=stall_after)
