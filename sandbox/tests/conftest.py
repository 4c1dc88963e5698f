import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.state import SandboxState

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parent / "samples"
# Tuesday 2026-06-23, 15:00 in Astana.
FIXED_NOW = datetime(2026, 6, 23, 10, 0, tzinfo=UTC)
WAPPI_TOKEN = "sandbox-token"
PROFILE_ID = "profile-1"


def load_sample(name: str) -> dict:
    payload = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return payload["messages"][0] if "messages" in payload else payload


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(clock=lambda: FIXED_NOW, seed=7)


@pytest.fixture
def app(state: SandboxState) -> FastAPI:
    return create_app(state)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox in-process: admin calls and raw HTTP, no credentials."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield http


@pytest.fixture
async def wappi(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, called the way the gateway calls Wappi (token header, profile_id query)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": WAPPI_TOKEN},
        params={"profile_id": PROFILE_ID},
    ) as http:
        yield http


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_sandbox(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real `python -m sandbox` process on a free port; yields its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--log-level", "warning", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{url}/sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start on port {port}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_sandbox() -> Iterator[str]:
    """One real `python -m sandbox` server for the tests that go through the google-genai SDK."""
    with running_sandbox() as url:
        yield url
