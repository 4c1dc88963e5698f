"""Putting parked messages back: an operator moves a DLQ's messages to their queue with a fresh retry
budget (POST /dead-letters/{queue}/replay on the service that consumes the queue)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from fastapi import APIRouter, Depends, HTTPException, Query, status
from loguru import logger
from pydantic import BaseModel

from service_kit.publisher import PUBLISH_TIMEOUT_S
from service_kit.queues import Queue

# Headers of a finished delivery history: a replayed message starts with a fresh retry budget.
SPENT_HEADERS = {"x-attempts", "x-dlq-reason", "x-original-queue", "x-death", "x-first-death-reason"}


async def replay_dead_letters(
    connection: AbstractRobustConnection, queue: Queue, limit: int
) -> tuple[int, int]:
    """Moves up to `limit` messages from Q.dlq back to Q; returns (moved, left in Q.dlq).

    Each is published with confirms before its DLQ copy is acked: a crash in between leaves it in both
    (the consumers are idempotent on message ids), never in neither. Unacked ones go back to the DLQ when
    the channel closes.
    """
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        dlq = await channel.get_queue(queue.dlq, ensure=True)
        moved = left = 0
        while moved < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                left = 0
                break
            # The broker's own count of what is still behind this message (a passive declare right after
            # the acks can report a stale number).
            left = message.message_count or 0
            await channel.default_exchange.publish(
                _fresh(message), routing_key=queue.name, timeout=PUBLISH_TIMEOUT_S
            )
            await message.ack()
            moved += 1
    finally:
        await channel.close()
    logger.info("{}: replayed {} dead letters, {} left", queue.name, moved, left)
    return moved, left


@dataclass(frozen=True)
class DeadLetter:
    """A parked message as an operator reads it."""

    message_id: str | None
    reason: str  # the consumer's reason, else the broker's (expired, maxlen, rejected)
    body: bytes


async def peek_dead_letters(
    connection: AbstractRobustConnection, queue: Queue, limit: int
) -> list[DeadLetter]:
    """Up to `limit` messages of Q.dlq, oldest first, left where they are: taken unacked and given back when
    the channel closes."""
    channel = await connection.channel()
    try:
        dlq = await channel.get_queue(queue.dlq, ensure=True)
        found = []
        while len(found) < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(DeadLetter(message.message_id, _reason(message.headers or {}), message.body))
    finally:
        await channel.close()
    return found


def _reason(headers: Mapping[str, Any]) -> str:
    reason = headers.get("x-dlq-reason") or headers.get("x-first-death-reason")
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason) if reason else "unknown"


class ReplayOut(BaseModel):
    queue: str
    replayed: int
    left_in_dlq: int


def dead_letters_router(
    replayable: Callable[[], Mapping[str, Queue]],
    connection: Callable[..., AbstractRobustConnection] | Callable[..., Awaitable[AbstractRobustConnection]],
    api_key: Any,
) -> APIRouter:
    """POST /dead-letters/{queue}/replay for the queues this service consumes (by contract name).

    `replayable` and `connection` are FastAPI dependencies of the service; `api_key` its key dependency.
    """
    router = APIRouter(dependencies=[api_key])

    # Depends() as defaults: with postponed annotations FastAPI could not resolve these local names.
    @router.post("/dead-letters/{queue}/replay", response_model=ReplayOut)
    async def replay(
        queue: str,
        queues: Mapping[str, Queue] = Depends(replayable),
        broker: AbstractRobustConnection = Depends(connection),
        limit: Annotated[int, Query(ge=1, le=1000, description="Most messages to move")] = 100,
    ) -> dict[str, Any]:
        if queue not in queues:
            known = ", ".join(queues)
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"No replayable queue {queue!r}; known: {known}"
            )
        replayed, left = await replay_dead_letters(broker, queues[queue], limit)
        return {"queue": queue, "replayed": replayed, "left_in_dlq": left}

    return router


def _fresh(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in SPENT_HEADERS and not key.startswith(("x-first-death", "x-last-death"))
    }
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type=message.content_type or "application/json",
        message_id=message.message_id,
    )
