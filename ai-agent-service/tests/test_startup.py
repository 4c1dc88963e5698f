"""Start-up checks: configuration errors name the variable, broken prompts stop the start, secrets stay out
of the logs."""

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from loguru import logger

from config.settings import Settings
from service_kit.logs import setup_logging
from tests.conftest import SERVICE_DIR

ADMIN_KEY = "admin-123456-long-enough-for-the-real-gemini"
VALID_ENV = {
    "GEMINI_API_KEY": "k-123456",
    "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/",
    "ADMIN_API_KEY": ADMIN_KEY,
    "BUSINESS_NAME": "ТОО «Ақ Жол Логистика»",
}


# Kept from the test's environment: where programs and packages are, not the service's settings.
KEPT = ("PATH", "HOME", "PYTHONPATH")


def start(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.isupper() or key in KEPT}
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=SERVICE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_required_variable_is_named_and_exits_2():
    env = {key: value for key, value in VALID_ENV.items() if key != "GEMINI_API_KEY"}

    result = start(env)

    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: GEMINI_API_KEY is required"


def test_the_business_name_is_required_a_bot_never_speaks_for_a_company_it_guessed():
    result = start({**VALID_ENV, "BUSINESS_NAME": "  "})

    assert result.returncode == 2
    assert result.stderr.strip().startswith("Configuration error: BUSINESS_NAME is malformed")
    assert start({k: v for k, v in VALID_ENV.items() if k != "BUSINESS_NAME"}).stderr.strip() == (
        "Configuration error: BUSINESS_NAME is required"
    )


def test_a_malformed_value_is_named_and_exits_2():
    result = start({**VALID_ENV, "WORKING_HOURS_START": "ten", "DATABASE_URL": "mysql://x"})

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("Configuration error: WORKING_HOURS_START is malformed") for line in lines)
    assert any(line.startswith("Configuration error: DATABASE_URL is malformed") for line in lines)


def test_a_prompt_missing_a_placeholder_stops_the_start(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(SERVICE_DIR / "prompts", prompts)
    sales = prompts / "sales_agent_prompt.txt"
    sales.write_text(sales.read_text(encoding="utf-8").replace("{knowledge_base}", ""), encoding="utf-8")

    result = start({**VALID_ENV, "PROMPTS_PATH": str(prompts)})

    assert result.returncode == 2
    assert "Configuration error:" in result.stderr and "{knowledge_base}" in result.stderr


def test_settings_parse_the_spec_formats():
    settings = Settings(_env_file=None, **{**VALID_ENV, "FOLLOW_UP_INTERVALS": "24, 72,168"})

    assert settings.FOLLOW_UP_INTERVALS == [24, 72, 168]
    assert settings.DATABASE_URL == "postgresql+asyncpg://u:p@127.0.0.1:1/x"
    assert (settings.WORKING_HOURS_START, settings.WORKING_HOURS_END, settings.PORT) == (10, 18, 8002)
    assert "k-123456" not in repr(settings)


def test_secrets_are_masked_in_every_log_line(tmp_path):
    settings = Settings(_env_file=None, **VALID_ENV)
    lines: list[str] = []
    setup_logging("DEBUG", settings.secret_values(), log_dir=tmp_path)
    logger.add(lines.append, format="{message}")

    logger.info(f"calling Gemini with key k-123456 and admin key {ADMIN_KEY}")
    try:
        raise RuntimeError("auth failed for k-123456")
    except RuntimeError:
        logger.exception("Gemini call failed")

    text = "".join(lines)
    assert "k-123456" not in text and ADMIN_KEY not in text
    assert "calling Gemini with key *** and admin key ***" in text
    logger.remove()
    logger.add(sys.stderr)


@pytest.mark.parametrize("url", ["postgres://a@h/db", "postgresql://a@h/db", "postgresql+asyncpg://a@h/db"])
def test_every_postgres_url_form_is_accepted(url):
    assert (
        Settings(_env_file=None, **{**VALID_ENV, "DATABASE_URL": url}).DATABASE_URL
        == "postgresql+asyncpg://a@h/db"
    )


def test_env_example_lists_every_setting_and_nothing_else():
    lines = (SERVICE_DIR / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]
    assert sorted(listed) == sorted(Settings.model_fields)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_lines(env: dict[str, str], wanted: int, seconds: float = 30) -> tuple[list[str], bool]:
    """The service's first `wanted` lines of output (or all it wrote in `seconds`), and whether it was still
    running then; it is stopped either way."""
    clean = {key: value for key, value in os.environ.items() if not key.isupper() or key in KEPT}
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=SERVICE_DIR,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    taken: list[str] = []
    deadline = time.monotonic() + seconds
    while len(taken) < wanted and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            taken.append(lines.get(timeout=0.2))
    running = process.poll() is None
    process.terminate()
    process.wait(timeout=10)
    return taken, running


@pytest.mark.parametrize("missing", ["PostgreSQL", "RabbitMQ"])
def test_a_service_started_without_its_database_or_broker_waits_saying_so_once_per_try(missing):
    port = free_port()
    secret = "never-in-the-log-77"
    env = {
        **VALID_ENV,
        "DATABASE_URL": f"postgresql://postgres:{secret}@127.0.0.1:{port}/ai_agent"
        if missing == "PostgreSQL"
        else "postgresql://postgres@127.0.0.1:5432/postgres",
        "RABBITMQ_URL": f"amqp://agent:{secret}@127.0.0.1:{port}/",
        "PDF_CACHE_ENABLED": "false",
    }

    lines, running = first_lines(env, wanted=3)

    assert running, "the service must keep waiting, not exit"
    assert len(lines) == 3, lines
    for line, delay in zip(lines, ("1", "2", "4"), strict=True):
        assert f"{missing} at 127.0.0.1:{port}/" in line and "is not reachable (" in line, line
        assert line.rstrip().endswith(f"next try in {delay} s"), line
    assert not any(secret in line or "Traceback" in line for line in lines)
