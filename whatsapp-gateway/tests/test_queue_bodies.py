"""The handlers' pydantic bodies say what contracts/ say: the same property names and required fields, and
nothing beyond them."""

import pytest
from pydantic import BaseModel

from services.queue_bodies import ContactInfo, OutgoingMessage, VoiceTask
from tests.conftest import CONTRACTS

VOICE = CONTRACTS["voice_transcription"].schema


def _contract_shape(schema: dict) -> tuple[set[str], set[str], bool]:
    return set(schema["properties"]), set(schema.get("required", [])), schema["additionalProperties"]


def _model_shape(model: type[BaseModel]) -> tuple[set[str], set[str], bool]:
    fields = model.model_fields
    required = {name for name, field in fields.items() if field.is_required()}
    return set(fields), required, model.model_config["extra"] != "forbid"


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (OutgoingMessage, CONTRACTS["outgoing_messages"].schema),
        (VoiceTask, VOICE),
        (ContactInfo, VOICE["properties"]["contact_info"]),
    ],
)
def test_a_body_model_has_exactly_its_contracts_properties_and_required_fields(model, schema):
    assert _model_shape(model) == _contract_shape(schema)
