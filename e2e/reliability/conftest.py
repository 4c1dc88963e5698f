import pytest
from ledger import ROWS, table

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
    await sandbox.http.delete("/sandbox/faults")
    await sandbox.http.aclose()


def pytest_terminal_summary(terminalreporter):
    if ROWS:
        terminalreporter.write_sep("=", "reliability")
        terminalreporter.write_line(table())
