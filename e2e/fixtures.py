"""The pytest fixtures both e2e suites share: one running system per session, and a customer's sandbox."""

import pytest

from system import Sandbox, System


@pytest.fixture(scope="session")
def system():
    system = System()
    try:
        system.start()
        yield system
    finally:
        system.stop()


@pytest.fixture
async def customer(system):
    sandbox = Sandbox(system.sandbox_url)
    yield sandbox
    await sandbox.http.delete("/sandbox/faults")  # a scenario's faults end with it
    await sandbox.http.aclose()
