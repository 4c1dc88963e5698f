"""Keys never reach the log files: start-up, Gemini failures that echo the key, and API calls with wrong keys
all log through the service's own setup, then the files are searched for the key values."""

import sys

import httpx
from loguru import logger

from app import create_app
from service_kit.logs import setup_logging
from services.gemini_client import GeminiRetries
from tests.conftest import ADMIN_KEY, GEMINI_KEY, fixed_clock, incoming

BUSINESS = "ООО Альфа"


def gemini_error(status: int, name: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": message, "status": name}})


async def test_gemini_and_admin_keys_never_appear_in_the_log_files(
    tmp_path, capsys, settings, db, broker, gemini, queues
):
    setup_logging("DEBUG", settings.secret_values(), log_dir=tmp_path)
    try:
        app = create_app(
            settings,
            clock=fixed_clock(),
            gemini_retries=GeminiRetries(attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02),
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as client:
                for key in ("wrong", GEMINI_KEY, ADMIN_KEY + "x"):
                    assert (await client.get("/contacts", headers={"X-API-Key": key})).status_code == 401
                assert (await client.get("/stats", headers={"X-API-Key": ADMIN_KEY})).status_code == 200

                # A rejected key: permanent, dead-lettered with a traceback in the log, whose frames hold
                # the request headers ...
                gemini.moderator = lambda prompt: gemini_error(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
                )
                await queues.publish_incoming(incoming("Сколько стоит?", business=BUSINESS))
                await queues.wait_for(queues.incoming_queue.dlq)
                # ... and an overloaded Gemini whose error text quotes the key (the worst case): transient,
                # retried with a warning each time, then sent to the retry queue.
                gemini.moderator = lambda prompt: gemini_error(
                    503, "UNAVAILABLE", f"Overloaded; request with key {GEMINI_KEY} dropped"
                )
                await queues.publish_incoming(incoming("Сколько стоит?", business=BUSINESS))
                await queues.wait_for(queues.incoming_queue.retry)
        await logger.complete()
    finally:
        logger.remove()
        logger.add(sys.stderr)

    files = list(tmp_path.glob("*.log"))
    logged = "".join(path.read_text(encoding="utf-8") for path in files) + capsys.readouterr().out
    assert files  # more than one when the daily rotation falls inside the test
    for seen in ("started", "Refused GET /contacts", "dead-lettering", "retrying", "key *** dropped"):
        assert seen in logged, seen
    assert GEMINI_KEY not in logged
    assert ADMIN_KEY not in logged
