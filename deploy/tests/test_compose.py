"""docker-compose.yml (its shape is checked against the compose spec by `make test`): nobody on the network
reaches the broker, PostgreSQL is healthy only once both databases exist, migrations run before the services,
both databases are dumped daily, and each service starts with what compose gives it."""

from __future__ import annotations

import re
import subprocess
import uuid
from typing import Any

import pytest

from tests.conftest import ROOT, SERVICES, image_command, load_yaml, settings_check

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[-?])(?P<rest>[^}]*))?\}")
MIGRATIONS = {"whatsapp-gateway": "gateway-migrations", "ai-agent-service": "agent-migrations"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


def env_file(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}."""

    def one(match: re.Match) -> str:
        name, kind, rest = match["name"], match["kind"], match["rest"]
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise LookupError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(one, value)


def test_the_broker_is_reachable_from_this_machine_only_and_never_as_guest(compose):
    rabbitmq = compose["services"]["rabbitmq"]

    assert rabbitmq["ports"] == ["127.0.0.1:15672:15672"]
    assert not any(
        "5672" in str(port)
        for name, entry in compose["services"].items()
        for port in entry.get("ports", [])
        if name != "rabbitmq"
    )
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"].startswith("${RABBITMQ_USER:?")
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")
    assert "guest" not in COMPOSE_TEXT.lower()
    assert not any(
        "5432" in str(port) for entry in compose["services"].values() for port in entry.get("ports", [])
    )


def test_the_broker_keeps_its_data_under_a_fixed_node_name(compose):
    assert compose["services"]["rabbitmq"]["hostname"] == "rabbitmq"


def healthcheck_command(compose: dict[str, Any]) -> str:
    kind, command = compose["services"]["postgres"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return command


def test_postgres_is_healthy_over_tcp_only_once_both_databases_exist(compose):
    command = healthcheck_command(compose)

    assert "-h 127.0.0.1" in command and "'whatsapp_gateway'" in command and "'ai_agent'" in command


def test_the_postgres_health_check_passes_with_both_databases_and_fails_without_one(compose):
    # Run against this machine's server, with two databases of this run standing in for the real two.
    first, second = (f"compose_check_{uuid.uuid4().hex[:8]}" for _ in range(2))
    command = healthcheck_command(compose).replace("whatsapp_gateway", first).replace("ai_agent", second)
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*psql, f'CREATE DATABASE "{first}"'], check=True)
    try:
        with_one = subprocess.run(["sh", "-c", command]).returncode
        subprocess.run([*psql, f'CREATE DATABASE "{second}"'], check=True)
        with_both = subprocess.run(["sh", "-c", command]).returncode
    finally:
        for name in (first, second):
            subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}"'], check=True)

    assert (with_one, with_both) == (1, 0)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_after_its_migrations_ran_once(compose, name):
    migrations = compose["services"][MIGRATIONS[name]]
    app = compose["services"][name]

    assert migrations["command"] == ["alembic", "upgrade", "head"]
    assert migrations["image"] == app["image"] and migrations["build"] == app["build"]
    assert app["depends_on"][MIGRATIONS[name]] == {"condition": "service_completed_successfully"}
    assert "command" not in app
    assert image_command(ROOT / app["build"]["dockerfile"]) == '["python", "app.py"]'


def test_both_databases_are_dumped_daily_and_kept_seven_days_in_a_volume(compose):
    backup = compose["services"]["backup"]

    assert backup["command"][-2:] == ["whatsapp_gateway", "ai_agent"]
    assert backup["command"][:2] == ["sh", "/usr/local/bin/backup_databases.sh"]
    assert "./scripts/backup_databases.sh:/usr/local/bin/backup_databases.sh:ro" in backup["volumes"]
    assert (
        f"backups:{backup['environment']['BACKUP_DIR']}" in backup["volumes"]
        and "backups" in compose["volumes"]
    )
    assert backup["environment"]["BACKUP_KEEP_DAYS"] == "7"
    assert backup["environment"]["PGHOST"] == "postgres" and backup["restart"] == "unless-stopped"


def compose_env(compose: dict[str, Any], name: str, variables: dict[str, str]) -> dict[str, str]:
    environment = compose["services"][name]["environment"]
    return {key: interpolate(str(value), variables) for key, value in environment.items()}


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_with_what_compose_gives_it_in_the_sandbox(compose, name):
    check = settings_check(name, compose_env(compose, name, env_file("sandbox/compose.env")))

    assert check["errors"] == []


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_with_what_compose_gives_it_against_the_real_apis(compose, name):
    owners_env = {
        "POSTGRES_PASSWORD": "a1b2c3",
        "RABBITMQ_USER": "agent",
        "RABBITMQ_PASSWORD": "p@ss:w/rd",  # any character: the services take the broker in parts
        "ADMIN_API_KEY": "k" * 48,
        "WAPPI_TOKEN": "wappi-token",
        "WAPPI_PROFILE_ID": "profile-1",
        "GEMINI_API_KEY": "AIza-key",
        "BUSINESS_NAME": "ТОО «Ақ Жол Логистика»",
    }

    env = compose_env(compose, name, owners_env)
    check = settings_check(name, env)

    assert check["errors"] == []
    assert (
        "wappi.pro" in env.get("WAPPI_BASE_URL", "wappi.pro") and "googleapis.com" in env["GEMINI_BASE_URL"]
    )
    with pytest.raises(LookupError, match="ADMIN_API_KEY"):
        compose_env(compose, name, {**owners_env, "ADMIN_API_KEY": ""})
