"""Configuration: the spec's variables, one clear line per bad one, exit code 2."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Settings
from service_kit.settings import ConfigurationError, load_settings
from tests.conftest import PROCESS_ENV
from utils.clock import local_day_bounds, to_local_iso

SERVICE_DIR = Path(__file__).resolve().parents[1]
REQUIRED = [
    "DATABASE_URL",
    "WAPPI_TOKEN",
    "WAPPI_PROFILE_ID",
    "RABBITMQ_URL",
    "GEMINI_API_KEY",
    "ADMIN_API_KEY",
]
VALID = {
    "DATABASE_URL": "postgres://u:p@db:5432/whatsapp_gateway",
    "WAPPI_TOKEN": "t",
    "WAPPI_PROFILE_ID": "p",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "GEMINI_API_KEY": "g",
    "ADMIN_API_KEY": "a" * 32,  # the real Wappi and Gemini are the defaults: a production-length key
}


def _run_app(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py"], cwd=SERVICE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_missing_required_variables_give_one_clear_line_each_and_exit_2():
    result = _run_app(PROCESS_ENV)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    expected = [f"Configuration error: {name} is required" for name in REQUIRED]
    broker = expected.index("Configuration error: RABBITMQ_URL is required")
    expected[broker] += " (or RABBITMQ_HOST, RABBITMQ_USER and RABBITMQ_PASSWORD)"
    assert sorted(lines) == sorted(expected)


def test_a_malformed_value_names_the_variable():
    result = _run_app({**PROCESS_ENV, **VALID, "POLLING_INTERVAL": "often"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Configuration error: POLLING_INTERVAL is malformed")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "given",
    ["postgres://u:p@db:5432/x", "postgresql://u:p@db:5432/x", "postgresql+asyncpg://u:p@db:5432/x"],
)
def test_database_url_is_accepted_in_every_form_hosts_hand_out(given):
    settings = load_settings(Settings, _env_file=None, **{**VALID, "DATABASE_URL": given})
    assert settings.DATABASE_URL == "postgresql+asyncpg://u:p@db:5432/x"


def test_defaults_follow_the_spec():
    settings = load_settings(Settings, _env_file=None, **VALID)
    assert settings.POLLING_INTERVAL == 5
    assert settings.QUEUE_INCOMING_MESSAGES == "incoming_messages"
    assert settings.TIMEZONE == "Asia/Almaty"
    assert settings.WAPPI_BASE_URL == "https://wappi.pro"
    assert settings.GEMINI_MODEL == "gemini-2.5-pro"
    assert settings.PORT == 8001
    assert settings.RATE_LIMIT_PER_MINUTE == 120
    assert (settings.RETRY_DELAY_SECONDS, settings.WAPPI_RETRY_ATTEMPTS) == (5, 4)
    assert settings.CLOCK_OFFSET_SECONDS == 0
    assert settings.MAX_SENDS_PER_MINUTE == 30
    assert settings.MANAGERS == ()
    assert settings.WAPPI_WEBHOOK_SECRET is None  # webhook mode off: polling as ever
    assert (settings.WAPPI_WEBHOOK_POLL_INTERVAL, settings.WAPPI_WEBHOOK_RATE_LIMIT_PER_MINUTE) == (60, 3000)


def test_env_example_lists_every_setting_and_nothing_else():
    lines = (SERVICE_DIR / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]
    assert sorted(listed) == sorted(Settings.model_fields)


def test_an_environment_still_setting_the_dropped_wappi_phone_number_starts(monkeypatch):
    monkeypatch.setenv("WAPPI_PHONE_NUMBER", "77752837306")  # docker-compose and render.yaml still pass it
    settings = load_settings(Settings, _env_file=None, **VALID)
    assert "WAPPI_PHONE_NUMBER" not in settings.model_dump()


def test_a_retry_delay_longer_than_the_retry_queues_ttl_is_rejected():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Settings, _env_file=None, **{**VALID, "RETRY_DELAY_SECONDS": "30"})
    assert caught.value.lines[0].startswith("Configuration error: RETRY_DELAY_SECONDS is malformed")


def test_the_secrets_to_mask_include_the_passwords_in_the_urls_and_never_show_in_a_repr():
    settings = load_settings(
        Settings,
        _env_file=None,
        **{
            **VALID,
            "WAPPI_TOKEN": "wappi-token-1",
            "DATABASE_URL": "postgres://app:db%40pass@db:5432/x",
            "RABBITMQ_URL": "amqps://user:mq-pass@mq.example/vhost",
        },
    )
    secrets = {"wappi-token-1", "g", VALID["ADMIN_API_KEY"], "db%40pass", "db@pass", "mq-pass"}
    assert secrets <= set(settings.secret_values())
    assert not any(secret in repr(settings) for secret in ("wappi-token-1", "db%40pass", "mq-pass"))


def test_a_short_admin_key_is_refused_while_wappi_is_the_real_one():
    env = {**VALID, "ADMIN_API_KEY": "local-admin-key", "GEMINI_BASE_URL": "http://127.0.0.1:8090"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Settings, _env_file=None, **env)

    assert caught.value.lines[0].startswith(
        "Configuration error: ADMIN_API_KEY must be at least 32 characters"
    )
    assert "(WAPPI_BASE_URL=https://wappi.pro)" in caught.value.lines[0]
    assert load_settings(Settings, _env_file=None, **{**env, "WAPPI_BASE_URL": "http://127.0.0.1:8090"})


def test_an_unknown_rabbitmq_scheme_is_rejected():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Settings, _env_file=None, **{**VALID, "RABBITMQ_URL": "redis://localhost"})
    assert caught.value.lines == [
        "Configuration error: RABBITMQ_URL is malformed: must start with amqp:// or amqps://"
    ]


def test_almaty_is_utc_plus_5_in_2026():
    settings = load_settings(Settings, _env_file=None, **VALID)
    assert to_local_iso(datetime(2026, 10, 5, 9, 30, tzinfo=UTC), settings.tz) == "2026-10-05T14:30:00+05:00"
    start, end = local_day_bounds(datetime(2026, 10, 5, 20, 0, tzinfo=UTC), settings.tz)
    assert start == datetime(2026, 10, 5, 19, 0, tzinfo=UTC)  # 00:00 on the 6th in Astana
    assert end == datetime(2026, 10, 6, 19, 0, tzinfo=UTC)


def test_managers_are_read_as_names_and_numbers_in_the_whitelists_form():
    settings = load_settings(
        Settings, _env_file=None, **VALID, MANAGERS="Айгерим:+7 701 123 45 67, Данияр: 8 (701) 765-43-21,"
    )
    assert [(m.name, m.phone) for m in settings.MANAGERS] == [
        ("Айгерим", "77011234567"),
        ("Данияр", "77017654321"),
    ]
    assert settings.manager_phones == {"77011234567", "77017654321"}


@pytest.mark.parametrize(
    ("managers", "why"),
    [
        ("Айгерим:77011234567,Данияр", "'Данияр' is not Name:phone"),
        ("Айгерим:7701", "'Айгерим:7701': '7701' is not a phone number"),
        (":77011234567", "':77011234567' is not Name:phone"),
        (
            "Айгерим:77011234567,Данияр:8 701 123 45 67",
            "'Данияр:8 701 123 45 67': 77011234567 is listed twice",
        ),
    ],
)
def test_a_bad_managers_entry_is_one_clear_configuration_line(managers, why):
    result = _run_app({**PROCESS_ENV, **VALID, "MANAGERS": managers})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Configuration error: MANAGERS is malformed: {why} "
        "(expected e.g. Айгерим:77011234567,Данияр:77017654321)"
    ]


@pytest.mark.parametrize(
    "secret",
    [
        "too-short-to-be-unguessable",
        "a-long-secret-with-a-slash/in-it-0123456789",
        "a long secret with spaces in it 0123456789",
        "секрет-который-достаточно-длинный-0123456789",
    ],
)
def test_a_guessable_or_url_mangled_webhook_secret_is_one_clear_configuration_line(secret):
    result = _run_app({**PROCESS_ENV, **VALID, "WAPPI_WEBHOOK_SECRET": secret})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: WAPPI_WEBHOOK_SECRET is malformed: must be at least 32 characters of A-Z, a-z, "
        "0-9, '-' and '_' (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    ]


@pytest.mark.parametrize(("given", "mode_on"), [("", False), ("   ", False), ("x" * 32, True)])
def test_an_empty_webhook_secret_leaves_webhook_mode_off(given, mode_on):
    settings = load_settings(Settings, _env_file=None, **VALID, WAPPI_WEBHOOK_SECRET=given)
    assert (settings.WAPPI_WEBHOOK_SECRET is not None) is mode_on
    assert given.strip() == "" or given in settings.secret_values()  # masked in the logs like every key
