"""render.yaml deploys on the first try: it follows Render's Blueprint schema, every reference names a
resource of the file, and each service starts with exactly what the Blueprint gives it plus the secrets Render
asks the owner for. The schema is Render's own (https://render.com/schema/render.yaml.json, as published in
December 2026), vendored in deploy/render-blueprint.schema.json: replace that file to follow a newer one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import ROOT, SERVICES, image_command, load_yaml, settings_check

SCHEMA = json.loads((ROOT / "deploy" / "render-blueprint.schema.json").read_text(encoding="utf-8"))
# What Render puts in a variable the Blueprint wires: a generated value is a base64 256-bit string; a
# database's and a private service's addresses look like these.
GENERATED = "q3J0bm9ZcmFuZG9tMjU2Yml0c2Jhc2U2NGVuY29kZWQ="
DATABASE_PROPERTIES = {"connectionString": "postgresql://app_user:Pw9xYz@dpg-d1a2b3c4d5e6f7-a/{database}"}
SERVICE_PROPERTIES = {"host": "rabbitmq-d1a2", "port": "5672", "hostport": "rabbitmq-d1a2:5672"}
# What the owner types when Render asks (sync: false); every other asked-for value is left empty.
OWNER_ENTERS = {
    "WAPPI_TOKEN": "wappi-token",
    "WAPPI_PROFILE_ID": "profile-1",
    "GEMINI_API_KEY": "AIza-key",
    "BUSINESS_NAME": "ТОО «Ақ Жол Логистика»",
}


@pytest.fixture(scope="module")
def blueprint() -> dict[str, Any]:
    return load_yaml("render.yaml")


def service(blueprint: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in blueprint["services"] if entry["name"] == name)


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_blueprint_follows_renders_schema(blueprint):
    assert schema_errors(blueprint) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda b: b["services"][1].update(healthcheckPath="/health"),  # a misspelt key
        lambda b: b["databases"][0].update(ipAllowList="none"),  # a wrong type
        lambda b: b["services"][1]["envVars"][0].update(fromDatabase={"name": "x", "property": "url"}),
    ],
)
def test_the_schema_check_catches_unknown_keys_and_wrong_types(blueprint, break_it):
    broken = copy.deepcopy(blueprint)
    break_it(broken)
    assert schema_errors(broken) != []


def test_every_reference_names_a_resource_of_the_file(blueprint):
    services = {(entry["type"], entry["name"]): entry for entry in blueprint["services"]}
    databases = {entry["name"] for entry in blueprint["databases"]}
    dangling = []
    for entry in blueprint["services"]:
        for var in entry.get("envVars", []):
            if "fromDatabase" in var and var["fromDatabase"]["name"] not in databases:
                dangling.append(f"{entry['name']}.{var['key']}")
            if "fromService" in var:
                source = var["fromService"]
                target = services.get((source["type"], source["name"]))
                keys = {other["key"] for other in target.get("envVars", [])} if target else set()
                if target is None or ("envVarKey" in source and source["envVarKey"] not in keys):
                    dangling.append(f"{entry['name']}.{var['key']}")
    assert dangling == []


def blueprint_env(blueprint: dict[str, Any], entry: dict[str, Any]) -> dict[str, str]:
    """The environment Render gives `entry` on the first deploy."""
    env = {}
    for var in entry["envVars"]:
        env[var["key"]] = rendered_value(blueprint, var)
    return env


def rendered_value(blueprint: dict[str, Any], var: dict[str, Any]) -> str:
    if "value" in var:
        return str(var["value"])
    if var.get("generateValue"):
        return GENERATED
    if "fromDatabase" in var:
        database = next(db for db in blueprint["databases"] if db["name"] == var["fromDatabase"]["name"])
        return DATABASE_PROPERTIES[var["fromDatabase"]["property"]].format(database=database["databaseName"])
    if "fromService" in var:
        source = var["fromService"]
        if "property" in source:
            return SERVICE_PROPERTIES[source["property"]]
        referenced = next(
            v for v in service(blueprint, source["name"])["envVars"] if v["key"] == source["envVarKey"]
        )
        return rendered_value(blueprint, referenced)
    assert var.get("sync") is False, f"{var['key']} has no value"
    return OWNER_ENTERS.get(var["key"], "")


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_with_what_the_blueprint_gives_it(blueprint, name):
    env = blueprint_env(blueprint, service(blueprint, name))

    check = settings_check(name, env)

    assert check["errors"] == []
    # The broker comes in parts; every other required setting is wired by name.
    assert set(check["required"]) - {"RABBITMQ_URL"} <= set(env)
    assert {"RABBITMQ_HOST", "RABBITMQ_USER", "RABBITMQ_PASSWORD"} <= set(env)


@pytest.mark.parametrize("name", SERVICES)
def test_migrations_run_once_before_the_deploy_and_not_in_the_containers(blueprint, name):
    entry = service(blueprint, name)

    assert entry["preDeployCommand"] == "alembic upgrade head"
    assert "dockerCommand" not in entry and "startCommand" not in entry
    assert image_command(ROOT / entry["dockerfilePath"]) == '["python", "app.py"]'


def test_the_databases_take_connections_from_the_private_network_only(blueprint):
    assert [db.get("ipAllowList") for db in blueprint["databases"]] == [[], []]


def test_the_broker_keeps_its_data_and_its_generated_password_across_deploys(blueprint):
    broker = service(blueprint, "rabbitmq")
    env = {var["key"]: var for var in broker["envVars"]}

    assert broker["type"] == "pserv" and broker["disk"]["mountPath"] == "/var/lib/rabbitmq"
    assert env["RABBITMQ_DEFAULT_PASS"] == {"key": "RABBITMQ_DEFAULT_PASS", "generateValue": True}
    assert env["RABBITMQ_NODENAME"]["value"] == "rabbit@localhost"
