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
    await sandbox.http.aclose()
