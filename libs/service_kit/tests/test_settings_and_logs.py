"""Shared settings read the hosts' URL forms and name every bad variable; logs never show a secret."""

from datetime import timedelta

import pytest
from loguru import logger

from service_kit.clock import offset_clock, utc_now
from service_kit.errors import TransientError, is_transient
from service_kit.logs import setup_logging
from service_kit.settings import ConfigurationError, ServiceSettings, load_settings

ADMIN_KEY = "admin-key-456-long-enough-for-the-real-apis"
VALID = {
    "PROJECT_NAME": "kit",
    "DATABASE_URL": "postgres://u:p%40ss@db:5432/x",
    "RABBITMQ_URL": "amqp://agent:broker-secret@mq:5672/",
    "GEMINI_API_KEY": "gemini-key-123",
    "ADMIN_API_KEY": ADMIN_KEY,
}


def test_a_hosts_postgres_url_is_taken_and_secrets_include_the_url_passwords():
    settings = load_settings(ServiceSettings, _env_file=None, **VALID)

    assert settings.DATABASE_URL == "postgresql+asyncpg://u:p%40ss@db:5432/x"
    assert set(settings.secret_values()) >= {
        "gemini-key-123",
        ADMIN_KEY,
        "broker-secret",
        "p@ss",
        "p%40ss",
    }


def test_every_bad_variable_is_named_on_its_own_line():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            ServiceSettings,
            _env_file=None,
            **{**VALID, "GEMINI_API_KEY": "", "RABBITMQ_URL": "redis://x", "TIMEZONE": "Mars/Base"},
        )

    assert caught.value.lines == [
        "Configuration error: RABBITMQ_URL is malformed: must start with amqp:// or amqps://",
        "Configuration error: GEMINI_API_KEY is required",
        "Configuration error: TIMEZONE is malformed: unknown time zone 'Mars/Base'",
    ]


def test_the_broker_may_be_given_in_parts_as_render_hands_them_out():
    parts = {"RABBITMQ_HOST": "rabbitmq-x1y2", "RABBITMQ_USER": "agent", "RABBITMQ_PASSWORD": "p@ss/w:rd+="}
    settings = load_settings(ServiceSettings, _env_file=None, **{**VALID, "RABBITMQ_URL": ""}, **parts)

    assert settings.RABBITMQ_URL == "amqp://agent:p%40ss%2Fw%3Ard%2B%3D@rabbitmq-x1y2:5672/"
    assert "p@ss/w:rd+=" in settings.secret_values()
    # A whole URL, when given, wins over the parts.
    assert (
        load_settings(ServiceSettings, _env_file=None, **VALID, **parts).RABBITMQ_URL == VALID["RABBITMQ_URL"]
    )


def test_a_missing_broker_names_both_ways_to_give_it():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ServiceSettings, _env_file=None, **{**VALID, "RABBITMQ_URL": "", "RABBITMQ_HOST": "mq"})

    assert caught.value.lines == [
        "Configuration error: RABBITMQ_URL is required "
        "(or RABBITMQ_HOST, RABBITMQ_USER and RABBITMQ_PASSWORD)"
    ]


def test_a_short_admin_key_is_refused_against_the_real_apis_and_allowed_against_the_sandbox():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ServiceSettings, _env_file=None, **{**VALID, "ADMIN_API_KEY": "local-admin-key"})
    sandbox = {**VALID, "ADMIN_API_KEY": "local-admin-key", "GEMINI_BASE_URL": "http://sandbox:8090"}

    assert caught.value.lines == [
        "Configuration error: ADMIN_API_KEY must be at least 32 characters when the service talks to the "
        "real API (GEMINI_BASE_URL=https://generativelanguage.googleapis.com); "
        "only a sandbox run may use a shorter key"
    ]
    assert load_settings(ServiceSettings, _env_file=None, **sandbox).ADMIN_API_KEY.get_secret_value()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("*", "'*' lets any client pick its address through X-Forwarded-For; name the proxy"),
        ("10.0.0.0/8, proxy.local", "'proxy.local' is not an IP address or network"),
    ],
)
def test_x_forwarded_for_is_believed_only_from_named_proxies(value, why):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ServiceSettings, _env_file=None, **VALID, FORWARDED_ALLOW_IPS=value)

    assert caught.value.lines == [f"Configuration error: FORWARDED_ALLOW_IPS is malformed: {why}"]
    render = "10.0.0.0/8,173.245.48.0/20,2400:cb00::/32"
    assert load_settings(ServiceSettings, _env_file=None, **VALID, FORWARDED_ALLOW_IPS=render)


def test_an_exception_says_itself_whether_it_is_worth_retrying():
    class Outage(Exception):
        transient = True

    assert is_transient(TransientError()) and is_transient(Outage()) and is_transient(ConnectionError())
    assert not is_transient(ValueError("a bug"))


def test_secrets_are_masked_in_messages_and_tracebacks(tmp_path, capsys):
    setup_logging("INFO", ["gemini-key-123", "ab"], log_dir=tmp_path)
    try:
        logger.info("calling with gemini-key-123 and ab")
        try:
            raise RuntimeError("GET https://x/?key=gemini-key-123 failed")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.remove()
    out = capsys.readouterr().out
    written = "".join(path.read_text() for path in tmp_path.iterdir())

    for text in (out, written):
        assert "gemini-key-123" not in text and "calling with *** and ab" in text
        assert "GET https://x/?key=*** failed" in text


def test_phone_numbers_are_masked_at_info_and_the_files_follow_the_log_level(tmp_path, capsys):
    setup_logging("INFO", [], log_dir=tmp_path)
    try:
        logger.debug("debug line for 77011234567")
        logger.info("Reply to 77011234567 (chat +77011234567@c.us), message 3EB012345678901234AB")
        logger.warning("Manager 7701765432112 and a 9-digit 770123456 left alone")
    finally:
        logger.remove()
    out = capsys.readouterr().out
    written = "".join(path.read_text() for path in tmp_path.iterdir())

    for text in (out, written):
        assert "debug line" not in text  # the file, too, is written at LOG_LEVEL
        assert "Reply to 7701***4567 (chat +7701***4567@c.us), message 3EB012345678901234AB" in text
        assert "Manager 7701***2112 and a 9-digit 770123456 left alone" in text
        assert "77011234567" not in text


def test_debug_lines_keep_the_number_for_a_developer(tmp_path, capsys):
    setup_logging("DEBUG", [], log_dir=tmp_path)
    try:
        logger.debug("debug line for 77011234567")
        logger.info("info line for 77011234567")
    finally:
        logger.remove()
    written = "".join(path.read_text() for path in tmp_path.iterdir())

    assert "debug line for 77011234567" in written and "info line for 7701***4567" in written


def test_the_offset_clock_runs_the_given_seconds_ahead_and_is_the_plain_clock_at_zero():
    ahead = offset_clock(3 * 86400)()
    assert offset_clock(0) is utc_now
    assert timedelta(days=3) - timedelta(seconds=5) < ahead - utc_now() <= timedelta(days=3)
    assert ahead.tzinfo is not None


def test_managers_are_read_as_name_and_normalised_phone():
    settings = load_settings(
        ServiceSettings, _env_file=None, **VALID, MANAGERS="Айгерим:77011234567, Данияр:+7 701 765-43-21"
    )

    assert [(m.name, m.phone) for m in settings.MANAGERS] == [
        ("Айгерим", "77011234567"),
        ("Данияр", "77017654321"),
    ]
    assert load_settings(ServiceSettings, _env_file=None, **VALID).MANAGERS == ()


@pytest.mark.parametrize(
    "value", ["Айгерим", "Айгерим:abc", ":77011234567", "А:77011234567,Б:8 701 123 45 67"]
)
def test_a_bad_managers_entry_is_named(value):
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ServiceSettings, _env_file=None, **VALID, MANAGERS=value)

    assert caught.value.lines[0].startswith("Configuration error: MANAGERS is malformed: ")
