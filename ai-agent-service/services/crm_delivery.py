"""Delivers crm_events to their CRMs: claim → commit → call → record, so no row lock or connection is held
while a CRM answers, and any number of replicas can run it.

- A claim is a timestamp (claimed_until, the database's time): other workers pass the row over until it
  expires, and it is the claim's token, so a worker whose claim expired and was taken over records nothing.
- Order: a contact's events reach each CRM in the order they happened; an event is claimed only when no
  earlier one of the same contact and target is still waiting (a parked one no longer holds the others up).
- Failure: a CRM that did not take the event (down, limited, timed out) gets it again after a backoff that
  doubles up to a few minutes and never gives up, so an outage of an hour loses nothing. An answer that
  retrying cannot fix (a Bitrix24 error other than its limits) parks the row with the error; /stats counts it.
- Exactly once for a CRM that answered 2xx: the row is marked delivered right after the answer, and a
  delivered row is never claimed again. Only a crash between the answer and that mark sends it again, with
  the same event id (X-Event-Id) for the receiver to drop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from loguru import logger
from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from models import CrmEvent
from service_kit.errors import is_transient
from service_kit.liveness import run_every
from service_kit.runtime import autocommit_session
from services.bitrix24_client import Bitrix24Client
from services.bitrix24_sync import deliver_to_bitrix24
from services.crm_events import BITRIX24, WEBHOOK, webhook_body
from services.crm_webhook import CrmWebhookClient

POLL_INTERVAL_S = 2.0
BATCH = 20
# Rounds of claiming per poll, so a long backlog still lets the loop beat for /health.
MAX_BATCHES_PER_POLL = 10
# Longer than a batch can take with every CRM call timing out, so only a dead worker lets a claim expire.
CLAIM_FOR = timedelta(minutes=5)


@dataclass(frozen=True)
class Backoff:
    """Seconds before the next attempt: `first_s`, doubling with each failure, at most `cap_s`, forever."""

    first_s: float = 5.0
    cap_s: float = 300.0

    def delay(self, attempts: int) -> float:
        doubled = self.first_s * 2.0 ** min(max(attempts - 1, 0), 32)
        # Jitter below the cap: replicas that failed together do not come back together.
        return min(self.cap_s, doubled) * random.uniform(0.8, 1.0)


@dataclass(frozen=True)
class CrmDeps:
    sessions: async_sessionmaker[AsyncSession]
    webhook: CrmWebhookClient | None = None
    bitrix24: Bitrix24Client | None = None
    backoff: Backoff = Backoff()
    claim_for: timedelta = CLAIM_FOR
    batch: int = BATCH

    @property
    def targets(self) -> tuple[str, ...]:
        return (WEBHOOK,) * (self.webhook is not None) + (BITRIX24,) * (self.bitrix24 is not None)

    async def aclose(self) -> None:
        for client in (self.webhook, self.bitrix24):
            if client is not None:
                await client.aclose()


async def run_crm_delivery(
    deps: CrmDeps, *, interval: float = POLL_INTERVAL_S, heartbeat: Callable[[], None] = lambda: None
) -> None:
    """Delivers due events forever; `heartbeat` after each poll."""
    await run_every(interval, partial(deliver_due, deps), what="CRM delivery round", heartbeat=heartbeat)


async def deliver_due(deps: CrmDeps) -> int:
    """Claims and delivers what is due, batch after batch; returns how many events the CRMs took."""
    delivered = 0
    for _ in range(MAX_BATCHES_PER_POLL):
        claimed = await claim_due(deps)
        if not claimed:
            break
        results = await asyncio.gather(*(deliver_one(deps, event) for event in claimed))
        delivered += sum(results)
    return delivered


def _pending(event: type[CrmEvent]) -> ColumnElement[bool]:
    return event.delivered_at.is_(None) & event.parked_at.is_(None)


async def claim_due(deps: CrmDeps) -> list[CrmEvent]:
    """Due events, each the earliest still waiting of its contact and target, claimed and committed."""
    if not deps.targets:
        return []
    earlier = aliased(CrmEvent)
    due = (
        select(CrmEvent.id)
        .where(
            _pending(CrmEvent),
            CrmEvent.target.in_(deps.targets),
            CrmEvent.next_attempt_at <= func.now(),
            or_(CrmEvent.claimed_until.is_(None), CrmEvent.claimed_until <= func.now()),
            ~exists().where(
                earlier.contact_id == CrmEvent.contact_id,
                earlier.target == CrmEvent.target,
                earlier.id < CrmEvent.id,
                _pending(earlier),
            ),
        )
        .order_by(CrmEvent.id)
        .limit(deps.batch)
        .with_for_update(skip_locked=True)
    )
    async with deps.sessions.begin() as session:
        claimed = await session.scalars(
            update(CrmEvent)
            .where(CrmEvent.id.in_(due))
            .values(claimed_until=func.now() + deps.claim_for, attempts=CrmEvent.attempts + 1)
            .returning(CrmEvent)
            .execution_options(synchronize_session=False)
        )
        return sorted(claimed.all(), key=lambda event: event.id)


async def deliver_one(deps: CrmDeps, event: CrmEvent) -> bool:
    """Sends one claimed event and records what came of it; True when its CRM took it."""
    try:
        if event.target == WEBHOOK and deps.webhook is not None:
            await deps.webhook.send(webhook_body(event))
        elif event.target == BITRIX24 and deps.bitrix24 is not None:
            await deliver_to_bitrix24(event, client=deps.bitrix24, sessions=deps.sessions)
        else:
            raise RuntimeError(f"no client for CRM target {event.target!r}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await _record_failure(deps, event, exc)
        return False
    await _record(deps.sessions, event, delivered_at=func.now(), last_error=None)
    logger.info("CRM {}: {} {} delivered", event.target, event.event_type, event.event_id)
    return True


async def _record_failure(deps: CrmDeps, event: CrmEvent, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    if is_transient(exc):
        delay = deps.backoff.delay(event.attempts)
        next_at = func.now() + timedelta(seconds=delay)
        await _record(deps.sessions, event, next_attempt_at=next_at, last_error=error)
        logger.warning(
            "CRM {}: {} {} not taken (attempt {}), again in {:.0f}s: {}",
            event.target,
            event.event_type,
            event.event_id,
            event.attempts,
            delay,
            error,
        )
    else:
        await _record(deps.sessions, event, parked_at=func.now(), last_error=error)
        logger.error(
            "CRM {}: {} {} parked, retrying cannot fix it: {}",
            event.target,
            event.event_type,
            event.event_id,
            error,
        )


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    event: CrmEvent,
    **values: ColumnElement | datetime | str | None,
) -> None:
    async with autocommit_session(sessions) as session:
        recorded = await session.execute(
            update(CrmEvent)
            .where(CrmEvent.id == event.id, CrmEvent.claimed_until == event.claimed_until)
            .values(claimed_until=None, **values)
        )
    if recorded.rowcount == 0:
        logger.warning("CRM {}: event {} was taken over by another worker", event.target, event.event_id)
