"""The daily backup (scripts/backup_databases.sh, compose's `backup` service) against this machine's
PostgreSQL: it dumps each database, deletes dumps older than its keep days, and the README's restore command
brings a dump back over a database that changed since."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "backup_databases.sh"
SERVER = {"PGHOST": "127.0.0.1", "PGUSER": "postgres"}
DAY_S = 86400


def psql(database: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAqc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def database() -> str:
    name = f"backup_check_{uuid.uuid4().hex[:8]}"
    psql("postgres", f'CREATE DATABASE "{name}"')
    yield name
    psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def aged(path: Path, days: float) -> Path:
    path.write_bytes(b"an old dump")
    then = time.time() - days * DAY_S
    os.utime(path, (then, then))
    return path


def run_backup_until(backup_dir: Path, databases: list[str], done) -> None:
    """Runs the backup loop until `done()`, then stops it (its process group: its sleep too)."""
    process = subprocess.Popen(
        ["sh", str(SCRIPT), *databases],
        env={"PATH": os.environ["PATH"], **SERVER, "BACKUP_DIR": str(backup_dir), "BACKUP_KEEP_DAYS": "7"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not done() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def test_a_daily_dump_is_written_old_ones_go_and_the_readme_command_restores_it(tmp_path, database):
    psql(database, "CREATE TABLE calls (client text); INSERT INTO calls VALUES ('Айгерим')")
    eight_days = aged(tmp_path / f"{database}-2026-11-20.dump", days=8)
    six_days = aged(tmp_path / f"{database}-2026-11-22.dump", days=6)

    def fresh() -> list[Path]:
        return [path for path in tmp_path.glob(f"{database}-*.dump") if path not in (eight_days, six_days)]

    run_backup_until(tmp_path, [database], lambda: fresh() and not eight_days.exists())

    assert len(fresh()) == 1 and re.fullmatch(rf"{database}-\d{{4}}-\d{{2}}-\d{{2}}\.dump", fresh()[0].name)
    assert not eight_days.exists() and six_days.exists()
    assert not list(tmp_path.glob("*.partial"))
    today = fresh()[0]
    # The database moves on after the dump; restoring puts it back as it was then.
    psql(database, "DELETE FROM calls; CREATE TABLE later (x int)")
    subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--single-transaction", "-d", database, str(today)],
        env={"PATH": os.environ["PATH"], **SERVER},
        check=True,
    )
    assert psql(database, "SELECT client FROM calls") == "Айгерим"


def test_a_database_that_cannot_be_dumped_leaves_no_file_and_the_others_are_dumped(tmp_path, database):
    missing = f"no_such_db_{uuid.uuid4().hex[:8]}"

    run_backup_until(tmp_path, [missing, database], lambda: list(tmp_path.glob(f"{database}-*.dump")))

    assert [path.name.rsplit("-", 3)[0] for path in tmp_path.iterdir()] == [database]
