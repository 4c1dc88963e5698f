"""GET /health, open to orchestrators: 503 only for what a restart can fix (the database or the broker
unreachable, a worker stalled or stopped); a Wappi outage is reported in the body with 200. Anyone may read
the body, so it says what is wrong in a word; what Wappi or the database said goes to the log."""

import asyncio
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy import text

from api.deps import Runtime, RuntimeDep
from models.poll_state import last_poll_time
from utils.clock import to_local_iso

router = APIRouter()
CHECK_TIMEOUT_S = 5.0
WAPPI_CHECK_EVERY_S = 5.0


@router.get("/health")
async def health(runtime: RuntimeDep) -> JSONResponse:
    database_ok, sizes, wappi, polled = await asyncio.gather(
        _database_ok(runtime), runtime.queue_sizes(), _wappi_state(runtime), _last_poll(runtime)
    )
    restartable_failure = not database_ok or sizes is None or not runtime.liveness.all_alive()
    body = {
        "status": "unhealthy" if restartable_failure else ("healthy" if wappi == "ok" else "degraded"),
        "wappi_connection": wappi,
        "queue_connection": "ok" if sizes is not None else "error",
        "database_connection": "ok" if database_ok else "error",
        "last_poll_time": polled,
        "workers": runtime.liveness.report(),
    }
    return JSONResponse(body, status_code=503 if restartable_failure else 200)


async def _database_ok(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), runtime.sessions() as session:
            await session.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        logger.warning("Health: database check failed: {}", exc)
        return False


async def _wappi_state(runtime: Runtime) -> str:
    # /health is open to anyone and probed often: Wappi (rate limits, bans) is asked at most every few s.
    checked_at, state = runtime.wappi_health
    if state is not None and time.monotonic() - checked_at < WAPPI_CHECK_EVERY_S:
        return state
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            status = await runtime.wappi.get_status(retry=False)
    except Exception as exc:
        logger.warning("Health: Wappi status check failed: {}", exc)
        state = "error"
    else:
        state = "ok" if status.authorized else "not authorized"
        if not status.authorized:
            logger.warning("Health: the Wappi profile is not authorized (app_status={})", status.app_status)
    runtime.wappi_health = (time.monotonic(), state)
    return state


async def _last_poll(runtime: Runtime) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            moment = await last_poll_time(runtime.sessions)
    except Exception:
        return None
    return to_local_iso(moment, runtime.settings.tz) if moment else None
