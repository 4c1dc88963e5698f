"""The pydantic models of the queue bodies cannot drift from contracts/: the same property names and the same
required fields, nested objects included."""

import json
from typing import Any

from pydantic import BaseModel

from services.incoming_messages import ContactInfo, IncomingMessage
from tests.conftest import REPO_DIR


def schema(name: str) -> dict[str, Any]:
    return json.loads((REPO_DIR / "contracts" / f"{name}.schema.json").read_text(encoding="utf-8"))


def resolved(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its local $ref followed (the contracts only refer within their own $defs)."""
    while "$ref" in node:
        node = root["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def shape(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """(property names, required ones) of a model."""
    fields = model.model_fields
    return set(fields), {name for name, field in fields.items() if field.is_required()}


def test_incoming_message_has_the_contracts_properties_and_required_fields():
    contract = schema("incoming_messages")

    assert shape(IncomingMessage) == (set(contract["properties"]), set(contract["required"]))
    contact_info = resolved(contract, contract["properties"]["contact_info"])
    assert shape(ContactInfo) == (set(contact_info["properties"]), set(contact_info.get("required", [])))
