"""Tokens and keys never reach a log: the real gateway process (start-up, Wappi and Gemini calls, their
failures, the API, shut-down) writes its stdout and log file, and neither holds a secret."""

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from loguru import logger

from service_kit.clock import utc_now
from services.leader_lease import LeaderLease
from services.outbox import MessageLogOutbox
from services.polling_service import PollerDeps, run_poller
from services.wappi_client import WappiClient
from tests.conftest import (
    ADMIN_KEY,
    GEMINI_KEY,
    PROCESS_ENV,
    SERVICE_DIR,
    VENV_PYTHON,
    WAPPI_TOKEN,
    _free_port,
    collect,
    inject,
    wait_faults_used,
    wait_first_poll,
)
from utils.metrics import GatewayMetrics

CUSTOMER = "77011234567"
WEBHOOK_SECRET = "logs-test-webhook-secret-0b1c2d3e4f5a6b7c"


async def fault(sandbox: httpx.AsyncClient, endpoint: str, **spec) -> None:
    (await sandbox.post("/sandbox/faults", json={"endpoint": endpoint, **spec})).raise_for_status()


def _environment(settings, port: int) -> dict[str, str]:
    return {
        **PROCESS_ENV,
        "DATABASE_URL": settings.DATABASE_URL,
        "RABBITMQ_URL": settings.RABBITMQ_URL,
        "WAPPI_TOKEN": WAPPI_TOKEN,
        "WAPPI_PROFILE_ID": settings.WAPPI_PROFILE_ID,
        "WAPPI_BASE_URL": settings.WAPPI_BASE_URL,
        "GEMINI_API_KEY": GEMINI_KEY,
        "GEMINI_BASE_URL": settings.GEMINI_BASE_URL,
        "ADMIN_API_KEY": ADMIN_KEY,
        "QUEUE_INCOMING_MESSAGES": settings.QUEUE_INCOMING_MESSAGES,
        "QUEUE_OUTGOING_MESSAGES": settings.QUEUE_OUTGOING_MESSAGES,
        "QUEUE_VOICE_TRANSCRIPTION": settings.QUEUE_VOICE_TRANSCRIPTION,
        "QUEUE_CONTACT_ERASURES": settings.QUEUE_CONTACT_ERASURES,
        "POLLING_INTERVAL": "0.2",
        "RETRY_DELAY_SECONDS": "0.5",
        "WAPPI_RETRY_BACKOFF_SECONDS": "0.05",
        "LOG_LEVEL": "DEBUG",
        "PORT": str(port),
        "WAPPI_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def _start_gateway(folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """app.py as in production, run in `folder`: its logs/ and the captured stdout.log land there."""
    with open(folder / "stdout.log", "wb") as stdout:
        return subprocess.Popen(
            [str(VENV_PYTHON), str(SERVICE_DIR / "app.py")],
            cwd=folder,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )


async def _wait_healthy(url: str, process: subprocess.Popen, wait_s: float = 20.0) -> None:
    deadline = time.monotonic() + wait_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not start")


@pytest.mark.usefixtures("clean")
async def test_tokens_and_keys_never_reach_stdout_or_the_log_file(
    settings, sessions, sandbox, broker, queues, tmp_path
):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start_gateway(tmp_path, _environment(settings, port))
    try:
        await _wait_healthy(url, process)
        await wait_first_poll(sessions)
        async with httpx.AsyncClient(base_url=url, timeout=10) as api:
            assert (await api.get("/stats", headers={"X-API-Key": "guess"})).status_code == 401
            assert (await api.get("/stats", headers={"X-API-Key": ADMIN_KEY})).status_code == 200
            # Wappi failing: poll cycles fail (logged with a traceback), Wappi refuses a send.
            await fault(sandbox, "chats/get", status=500, count=4)
            await wait_faults_used(sandbox, "chats/get")
            await fault(sandbox, "message/send", status=401, count=1)
            await api.post(
                "/test/send-message",
                headers={"X-API-Key": ADMIN_KEY},
                json={"phone_number": CUSTOMER, "message_text": "не пустят"},
            )
            assert len(await collect(broker, f"{queues.outgoing}.dlq", expect=1, wait_s=10)) == 1
            # Gemini: one voice note it refuses (401), one it transcribes.
            await fault(sandbox, "gemini", status=401, count=1)
            await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="первое")
            assert len(await collect(broker, queues.incoming, expect=1, wait_s=10)) == 1
            await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="второе")
            assert len(await collect(broker, queues.incoming, expect=1, wait_s=10)) == 1
            # Last (polling slows down once pushes arrive): a push, its URL in the access log, and a bad one.
            pushed = {
                "messages": [{"id": "LOGS1", "type": "chat", "body": "?", "chatId": f"{CUSTOMER}@c.us"}]
            }
            assert (await api.post(f"/webhooks/wappi/{WEBHOOK_SECRET}", json=pushed)).status_code == 200
            assert (await api.post(f"/webhooks/wappi/{WEBHOOK_SECRET}", content=b"{")).status_code == 400
            assert len(await collect(broker, queues.incoming, expect=1, wait_s=10)) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    written = (tmp_path / "stdout.log").read_text(encoding="utf-8", errors="replace")
    files = sorted((tmp_path / "logs").glob("app_*.log"))
    assert files, "no log file was written"
    written += "".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
    for line in (
        "started: polling",
        "Poll cycle failed",
        "Traceback",
        "Wappi message/send failed (401)",
        "POST /webhooks/wappi/***",
        "Refused a Wappi push: the body must be JSON",
    ):
        assert line in written, f"{line!r} is missing: the test did not run the path it means to"
    assert "not transcribed: Gemini answered 401" in written and "transcribed (ok)" in written
    assert "whatsapp-gateway stopped" in written
    secrets = {
        "WAPPI_TOKEN": WAPPI_TOKEN,
        "GEMINI_API_KEY": GEMINI_KEY,
        "ADMIN_API_KEY": ADMIN_KEY,
        "WAPPI_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    for name, secret in secrets.items():
        assert secret not in written, f"the value of {name} is in the logs"


@pytest.mark.usefixtures("clean")
async def test_an_unreachable_wappi_leaves_no_token_in_the_logged_traceback(
    settings, sessions, publisher, topology, production_logging
):
    """The request line that failed is in the traceback, with the token beside it in the source."""
    log_dir = production_logging(settings.secret_values())
    wappi = WappiClient(
        base_url=f"http://127.0.0.1:{_free_port()}",  # nobody listens there
        token=WAPPI_TOKEN,
        profile_id=settings.WAPPI_PROFILE_ID,
        metrics=GatewayMetrics(),
        attempts=2,
        backoff_initial=0.01,
    )
    outbox = MessageLogOutbox(topology, utc_now)
    deps = PollerDeps(wappi, sessions, publisher, outbox, GatewayMetrics(), settings.tz, utc_now)
    poller = asyncio.create_task(run_poller(deps, lease=LeaderLease(settings.DATABASE_URL), interval=0.2))
    await asyncio.sleep(1.0)
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    await wappi.close()
    await logger.complete()
    written = "".join(f.read_text(encoding="utf-8") for f in log_dir.glob("app_*.log"))
    assert "Poll cycle failed" in written and "httpx.ConnectError" in written
    assert WAPPI_TOKEN not in written
