"""POST /webhooks/wappi/{secret}: Wappi's pushes (webhook mode, on when WAPPI_WEBHOOK_SECRET is set).

The secret in the path is the push's credential, so the route takes no X-API-Key (it has a rate limit of
its own, app.py). A wrong secret, or none configured, is answered exactly as a path that does not exist,
whatever the method. A readable push is stored before it is answered and taken in right after
(services/webhook_service.py); a malformed one is refused with the reason and nothing of it is kept."""

import json
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import SecretStr

from api.deps import Runtime, RuntimeDep
from services.wappi_push import MalformedPush, read_push
from services.webhook_service import store_push

router = APIRouter()
# Every method: one that is not POST must not tell a wrong secret from a right one either.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _is_the_secret(presented: str, expected: SecretStr | None) -> bool:
    if expected is None:
        return False
    # compare_digest: the time taken does not tell how much of a guessed secret was right.
    return secrets.compare_digest(presented.encode("utf-8"), expected.get_secret_value().encode("utf-8"))


@router.api_route("/webhooks/wappi/{secret}", methods=METHODS, include_in_schema=False)
async def wappi_push(secret: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    if not _is_the_secret(secret, runtime.settings.WAPPI_WEBHOOK_SECRET):
        # The presented value is never logged: it may be the real secret of another deployment.
        logger.warning("Refused {} of a Wappi push: unknown webhook secret", request.method)
        runtime.metrics.webhook_pushes.labels("refused").inc()
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if request.method != "POST":
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": "POST"})
    try:
        payload = json.loads(await request.body())
    except ValueError:  # json's and unicode's decoding errors alike
        return _refused(runtime, 400, "the body must be JSON")
    try:
        messages = read_push(payload)
    except MalformedPush as exc:
        return _refused(runtime, 422, str(exc))
    if messages:
        await store_push(runtime.sessions, messages, runtime.clock())
        runtime.pushes_arrived.set()
    runtime.metrics.webhook_pushes.labels("stored" if messages else "ignored").inc()
    return JSONResponse({"status": "ok", "messages": len(messages)})


def _refused(runtime: Runtime, status: int, detail: str) -> JSONResponse:
    logger.warning("Refused a Wappi push: {}", detail)
    runtime.metrics.webhook_pushes.labels("malformed").inc()
    return JSONResponse({"detail": detail}, status_code=status)
