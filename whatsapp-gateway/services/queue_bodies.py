"""The bodies of the queues the gateway consumes, as pydantic models of contracts/*.schema.json.

The consumer checks each body against its JSON Schema first (patterns, lengths, formats); these models give
the handlers typed fields. tests/test_queue_bodies.py keeps them in step with the contracts."""

from typing import Literal

from pydantic import BaseModel, ConfigDict


class OutgoingMessage(BaseModel):
    """contracts/outgoing_messages.schema.json: a message for the sender to send through Wappi."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone_number: str
    message_text: str
    reply_to_message_id: str | None = None
    mark_as_read: bool = False
    outgoing_id: str | None = None  # the agent's idempotency key
    sent_by: Literal["reply", "follow_up", "manual", "operator", "reminder", "notification"] | None = None
    kind: Literal["message", "notification"] = "message"  # a notification goes to a manager only


class ContactInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    FirstName: str | None = None
    FullName: str | None = None
    PushName: str | None = None
    BusinessName: str | None = None


class VoiceTask(BaseModel):
    """contracts/voice_transcription.schema.json: a customer's voice note for the voice worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str
    chat_id: str
    phone_number: str
    voice_url: str | None  # Wappi's file_link; None: download by message id
    timestamp: str  # ISO 8601 with the business offset, passed on as written
    length_seconds: float | None = None  # the duration Wappi reported; None: told from the audio
    sender_name: str | None = None
    contact_info: ContactInfo | None = None


class ContactErasure(BaseModel):
    """contracts/contact_erasures.schema.json: a person the agent was told to forget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    erasure_id: str
    phone_number: str
    requested_at: str
