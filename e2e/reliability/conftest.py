from ledger import ROWS, table

from fixtures import customer, system  # noqa: F401 (pytest finds fixtures by name)


def pytest_terminal_summary(terminalreporter):
    if ROWS:
        terminalreporter.write_sep("=", "reliability")
        terminalreporter.write_line(table())
