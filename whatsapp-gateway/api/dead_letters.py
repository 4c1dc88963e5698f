"""POST /dead-letters/{queue}/replay: an operator puts parked (dead-lettered) messages back on their queue."""

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from loguru import logger

from api.deps import ApiKey, RuntimeDep
from config.queue import replay_dead_letters

router = APIRouter()
# The contract names of the queues this service consumes, and their roles in QueueNames.
REPLAYABLE = {"outgoing_messages": "outgoing", "voice_transcription": "voice"}


@router.post("/dead-letters/{queue}/replay", dependencies=[ApiKey])
async def replay(queue: str, runtime: RuntimeDep, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    role = REPLAYABLE.get(queue)
    if role is None:
        raise HTTPException(
            status_code=404, detail=f"No replayable queue {queue!r}; use one of: {', '.join(REPLAYABLE)}"
        )
    replayed, left = await replay_dead_letters(runtime.connection, runtime.queues.name(role), limit)
    logger.info("Replayed {} dead letters of {} ({} left in the DLQ)", replayed, queue, left)
    return {"queue": queue, "replayed": replayed, "left_in_dlq": left}
