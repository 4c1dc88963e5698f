"""Start-up checks: configuration errors name the variable, broken prompts stop the start, secrets stay out
of the logs."""

import os
import shutil
import subprocess
import sys

import pytest
from loguru import logger

from config.settings import Settings
from service_kit.logs import setup_logging
from tests.conftest import SERVICE_DIR

VALID_ENV = {
    "GEMINI_API_KEY": "k-123456",
    "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/",
    "ADMIN_API_KEY": "admin-123456",
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

    logger.info("calling Gemini with key k-123456 and admin key admin-123456")
    try:
        raise RuntimeError("auth failed for k-123456")
    except RuntimeError:
        logger.exception("Gemini call failed")

    text = "".join(lines)
    assert "k-123456" not in text and "admin-123456" not in text
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
