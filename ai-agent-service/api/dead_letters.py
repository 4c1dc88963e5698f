"""Operator tools for dead letters: putting parked incoming messages back on their queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from api.deps import ApiKey, BrokerDep

router = APIRouter(dependencies=[ApiKey])
# Only incoming messages are ours to replay; the other queues are consumed by the gateway.
REPLAYABLE = ("incoming_messages",)


class ReplayOut(BaseModel):
    queue: str
    replayed: int
    left_in_dlq: int


@router.post("/dead-letters/{queue}/replay", response_model=ReplayOut)
async def replay_dead_letters(
    queue: str,
    broker: BrokerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most messages to move")] = 100,
) -> dict:
    if queue not in REPLAYABLE:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"No replayable dead-letter queue {queue!r}; known: {', '.join(REPLAYABLE)}",
        )
    replayed, left = await broker.replay_dead_letters(queue, limit)
    return {"queue": queue, "replayed": replayed, "left_in_dlq": left}
