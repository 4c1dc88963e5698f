"""The pytest fixtures both e2e suites share: one running system per session (or per module, for a module
that runs at a moment of its own), and a customer's sandbox."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from system import Sandbox, System


@contextmanager
def running_system(
    moment: datetime | None = None, env: dict[str, dict[str, str]] | None = None
) -> Iterator[System]:
    """A whole system at `moment` (the machine's time if None), with extra settings per service."""
    system = System(moment=moment) if moment is not None else System()
    try:
        system.start(env)
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="session")
def system():
    with running_system() as system:
        yield system


@pytest.fixture
async def customer(system):
    sandbox = Sandbox(system.sandbox_url)
    yield sandbox
    # A scenario's faults and scripted model answers end with it.
    await sandbox.http.delete("/sandbox/faults")
    await sandbox.http.delete("/sandbox/gemini/scripts")
    await sandbox.http.aclose()
