import pytest
from ledger import ROWS, table

from fixtures import customer, running_system  # noqa: F401 (pytest finds fixtures by name)

# Hundreds of customers are answered within minutes here: the number's send rate (MAX_SENDS_PER_MINUTE,
# 30 by default, tested in test_owner_and_managers.py) would make that hours, so it is lifted.
SETTINGS = {"whatsapp-gateway": {"MAX_SENDS_PER_MINUTE": "100000"}}


@pytest.fixture(scope="session")
def system():
    with running_system(env=SETTINGS) as system:
        yield system


def pytest_terminal_summary(terminalreporter):
    if ROWS:
        terminalreporter.write_sep("=", "reliability")
        terminalreporter.write_line(table())
