"""/health (for the platform), /stats (the spec's numbers) and /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from loguru import logger
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.deps import ApiKey, RuntimeDep, SessionDep
from config.database import database_is_up
from config.runtime import Runtime
from models import Contact, Decision, FollowUp, LlmUsage, Message, ScheduledCall
from models.decision import GUARDED, HOLDING, NOT_A_CLIENT, REPLIED, UNCLASSIFIED
from service_kit.queues import queue_sizes
from services.crm_events import crm_backlog

router = APIRouter()
HEALTH_CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/health")
async def health(runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    report = await health_report(runtime)
    if report["status"] != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return report


async def health_report(runtime: Runtime) -> dict[str, Any]:
    """What /health says (the console's health page shows it too)."""
    database_ok = await _database_is_up(runtime.engine)
    broker_ok = not runtime.connection.is_closed and runtime.publisher.is_open
    workers = runtime.liveness.report()
    gemini = runtime.llm.status
    # Only what a restart could fix makes the service unhealthy; a Gemini outage is reported, not fatal.
    healthy = database_ok and broker_ok and runtime.liveness.all_alive()
    return {
        "status": "ok" if healthy else "unhealthy",
        "service": runtime.settings.PROJECT_NAME,
        "database": "ok" if database_ok else "down",
        "broker": "ok" if broker_ok else "down",
        # Anyone may read this body: Gemini's state in a word; what Gemini said is in the log and /stats.
        "gemini": {
            "model": runtime.llm.model,
            "status": gemini.state,
            "checked_at": gemini.at.isoformat() if gemini.at else None,
        },
        "consumer": workers["consumer"],
        "workers": workers,
        # Managers hear about booked calls, questions and paused chats only when MANAGERS is set.
        "notifications": f"on ({len(runtime.settings.MANAGERS)} managers)"
        if runtime.settings.MANAGERS
        else "off",
    }


async def _database_is_up(engine: AsyncEngine) -> bool:
    # A database that hangs is as down as one that refuses, and the platform's probe must get an answer.
    try:
        return await asyncio.wait_for(database_is_up(engine), HEALTH_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return False


@router.get("/stats", dependencies=[ApiKey])
async def stats(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    day_start = runtime.agent.hours.day_start(runtime.clock())
    classified = (
        await session.execute(
            select(
                func.count().filter(Contact.is_client.is_(True)),
                func.count().filter(Contact.is_client.is_(False)),
                func.count().filter(Contact.is_client.is_(None)),
            ).select_from(Contact)
        )
    ).one()
    replies_today = await session.scalar(
        select(func.count()).where(
            Message.is_from_bot.is_(True),
            Message.sent_by == "reply",
            Message.published_at.is_not(None),
            Message.timestamp >= day_start,
        )
    )
    today = case((LlmUsage.created_at >= day_start, 1), else_=0)
    tokens = (
        await session.execute(
            select(
                func.coalesce(func.sum(LlmUsage.prompt_tokens * today), 0),
                func.coalesce(func.sum(LlmUsage.output_tokens * today), 0),
                func.coalesce(func.sum(LlmUsage.prompt_tokens), 0),
                func.coalesce(func.sum(LlmUsage.output_tokens), 0),
            )
        )
    ).one()
    return {
        "classifications": {"client": classified[0], "non_client": classified[1], "unknown": classified[2]},
        "replies_sent_today": replies_today or 0,
        "follow_ups_active": await _active_follow_ups(session),
        "calls_booked": await session.scalar(
            select(func.count()).where(ScheduledCall.status.in_(("scheduled", "completed")))
        ),
        # What happened to today's client messages: guarded = the code's safe text replaced the model's,
        # holding = Gemini gave no usable answer.
        "decisions_today": await _decisions_since(session, day_start),
        "gemini_tokens": {
            "today": {"prompt": int(tokens[0]), "output": int(tokens[1])},
            "total": {"prompt": int(tokens[2]), "output": int(tokens[3])},
        },
        "queues": await queue_sizes_of(runtime),
        # Events waiting for a CRM (CRM_WEBHOOK_URL, Bitrix24), those a CRM refused for good, the oldest wait.
        "crm": await crm_backlog(session),
        "gemini": {"status": runtime.llm.status.state, "detail": runtime.llm.status.detail},
    }


@router.get("/metrics", dependencies=[ApiKey])
async def metrics(session: SessionDep, runtime: RuntimeDep) -> Response:
    runtime.metrics.follow_ups_active.set(await _active_follow_ups(session))
    for queue, size in (await queue_sizes_of(runtime)).items():
        runtime.metrics.queue_size.labels(queue).set(size)
    return Response(runtime.metrics.exposition(), media_type=runtime.metrics.content_type)


async def _decisions_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(Decision.kind, func.count()).where(Decision.created_at >= since).group_by(Decision.kind)
    )
    counts = {kind: 0 for kind in (REPLIED, GUARDED, HOLDING, UNCLASSIFIED, NOT_A_CLIENT)}
    counts.update({kind: count for kind, count in rows})
    return counts


async def _active_follow_ups(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).where(FollowUp.is_completed.is_(False))) or 0


async def queue_sizes_of(runtime: Runtime) -> dict[str, int]:
    try:
        return await queue_sizes(runtime.connection, runtime.queues.by_contract.values())
    except Exception as exc:
        logger.warning("Queue sizes unavailable: {}", exc)
        return {}
