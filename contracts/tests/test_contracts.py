"""The spec's example bodies validate, and what breaks a contract is refused with a readable error."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[1]
EXAMPLES = CONTRACTS / "examples"


def validator(queue: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS / f"{queue}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def errors(queue: str, body: object) -> list[str]:
    return [e.message for e in validator(queue).iter_errors(body)]


@pytest.mark.parametrize(
    ("queue", "name"),
    [
        ("incoming_messages", "incoming_text.json"),
        ("incoming_messages", "incoming_voice.json"),
        ("outgoing_messages", "outgoing.json"),
        ("voice_transcription", "voice_transcription.json"),
        ("contact_erasures", "contact_erasure.json"),
    ],
)
def test_spec_example_bodies_validate(queue, name):
    assert errors(queue, example(name)) == []


def test_optional_additions_are_accepted():
    incoming = example("incoming_text.json") | {"message_type": "image", "sender": "operator"}
    too_long = example("incoming_voice.json") | {"voice_too_long": True}
    voice = example("voice_transcription.json") | {"length_seconds": 412}
    assert errors("incoming_messages", too_long) == []
    assert errors("voice_transcription", voice) == []
    outgoing = example("outgoing.json") | {"outgoing_id": "reply-3EB0", "sent_by": "follow_up"}
    notification = example("outgoing.json") | {"sent_by": "notification", "kind": "notification"}
    assert errors("incoming_messages", incoming) == []
    assert errors("outgoing_messages", outgoing) == []
    assert errors("outgoing_messages", notification) == []


def test_missing_field_is_named():
    body = example("incoming_text.json")
    del body["phone_number"]
    assert errors("incoming_messages", body) == ["'phone_number' is a required property"]


def test_unknown_field_and_wrong_types_are_refused():
    body = example("outgoing.json") | {"surprise": 1, "mark_as_read": "yes"}
    assert len(errors("outgoing_messages", body)) == 2


def test_phone_number_must_be_digits():
    body = example("outgoing.json") | {"phone_number": "+7 701 123 45 67"}
    assert errors("outgoing_messages", body)


def test_timestamp_must_be_a_real_date_time():
    body = example("voice_transcription.json") | {"timestamp": "вчера"}
    assert errors("voice_transcription", body) == ["'вчера' is not a 'date-time'"]


def test_voice_result_must_carry_the_transcription_prefix():
    body = example("incoming_voice.json") | {"message_text": "Здравствуйте"}
    assert errors("incoming_messages", body)


def test_sent_by_outside_the_enum_is_refused():
    assert errors("outgoing_messages", example("outgoing.json") | {"sent_by": "robot"})


def test_a_sender_or_kind_outside_the_enum_is_refused():
    assert errors("incoming_messages", example("incoming_text.json") | {"sender": "bot"})
    assert errors("outgoing_messages", example("outgoing.json") | {"kind": "broadcast"})
