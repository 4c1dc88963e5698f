"""What happens in the chats: a customer (or the operator) writes, the bot sends or replies."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from fastapi import HTTPException, status
from pydantic import BaseModel, field_validator, model_validator

from sandbox.messages import (
    BUSINESS_PHONE,
    attach_media,
    build_message,
    dialog_id,
    fake_lid,
    media_bytes,
    media_file_name,
    media_mime,
    voice_bytes,
)
from sandbox.state import Chat, SandboxState

# Old-style WhatsApp group ids are "<creator phone>-<creation unix time>@g.us".
DEFAULT_GROUP_ID = "77000000001-1700000000@g.us"
DEFAULT_GROUP_NAME = "Sandbox группа"
# Every contact's Status update lands in this one chat, `from` saying whose it is.
STATUS_CHAT_ID = "status@broadcast"
STATUS_CHAT_NAME = "Статусы"
DEFAULT_CHANNEL_ID = "120363000000000001@newsletter"
DEFAULT_CHANNEL_NAME = "Sandbox канал"
DEFAULT_TRANSCRIPT = "Здравствуйте, это голосовое сообщение из песочницы"
_GROUP_ID = re.compile(r"^\d+-\d+@g\.us$")
_CHANNEL_ID = re.compile(r"^\d+@newsletter$")
_LID = re.compile(r"^\d{15}@lid$")
_PHONE = re.compile(r"^\d{5,20}$")

ChatKind = Literal["dialog", "group", "status", "channel", "lid"]


class InjectRequest(BaseModel):
    # The person writing; a channel post needs none (the channel itself is the sender).
    phone: str | None = None
    text: str = ""
    type: Literal["chat", "ptt", "image", "document", "reaction"] = "chat"
    chat: ChatKind = "dialog"
    sender_name: str | None = None
    contact_name: str | None = None
    business_name: str | None = None
    group: bool = False  # the same as chat="group"
    group_id: str | None = None
    group_name: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    lid: str | None = None  # a hidden-number chat's id; by default one derived from the phone
    lid_with_phone: bool = False  # whether Wappi knows the real number behind the @lid chat
    from_me: bool = False
    caption: str | None = None
    transcript: str | None = None
    # A voice note recorded elsewhere (the console's "try it as a customer"), base64; the fake Gemini cannot
    # hear it, so it carries `transcript` too, as what was said.
    audio_base64: str | None = None
    corrupt_audio: bool = False
    length_seconds: int = 4
    time: int | None = None

    @field_validator("phone")
    @classmethod
    def phone_digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = normalize_phone(value)
        if digits is None:
            raise ValueError("phone must be 5..20 digits")
        return digits

    @field_validator("group_id")
    @classmethod
    def group_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _GROUP_ID.match(value):
            raise ValueError("group_id must look like <digits>-<digits>@g.us")
        return value

    @field_validator("channel_id")
    @classmethod
    def channel_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL_ID.match(value):
            raise ValueError("channel_id must look like <digits>@newsletter")
        return value

    @field_validator("lid")
    @classmethod
    def lid_shape(cls, value: str | None) -> str | None:
        if value is not None and not _LID.match(value):
            raise ValueError("lid must look like <15 digits>@lid")
        return value

    @model_validator(mode="after")
    def chat_kind_is_consistent(self) -> InjectRequest:
        if self.group:
            if self.chat not in ("dialog", "group"):
                raise ValueError(f"group=true contradicts chat={self.chat!r}")
            self.chat = "group"
        if self.phone is None and self.chat != "channel":
            raise ValueError(f"phone is required for a {self.chat} message")
        return self


def normalize_phone(value: str) -> str | None:
    digits = value.strip().removeprefix("+").removesuffix("@c.us").replace(" ", "")
    return digits if _PHONE.match(digits) else None


def _target_chat(state: SandboxState, req: InjectRequest) -> Chat:
    if req.chat == "group":
        return _named_chat(
            state, req.group_id or DEFAULT_GROUP_ID, "group", req.group_name, DEFAULT_GROUP_NAME
        )
    if req.chat == "channel":
        channel_id = req.channel_id or DEFAULT_CHANNEL_ID
        return _named_chat(state, channel_id, "dialog", req.channel_name, DEFAULT_CHANNEL_NAME)
    if req.chat == "status":
        return state.get_or_create_chat(STATUS_CHAT_ID, "dialog", STATUS_CHAT_NAME)
    assert req.phone is not None
    if req.chat == "lid":
        chat_id = req.lid or fake_lid(req.phone)
        default_name = req.phone if req.lid_with_phone else chat_id.split("@", 1)[0]
        chat = state.get_or_create_chat(chat_id, "dialog", default_name)
    else:
        chat = state.get_or_create_chat(dialog_id(req.phone), "dialog", req.phone)
    if req.contact_name:
        chat.contact_name = req.contact_name
    chat.name = chat.contact_name or req.sender_name or chat.name
    if req.business_name is not None:
        chat.business_name = req.business_name
    return chat


def _named_chat(state: SandboxState, chat_id: str, chat_type: str, name: str | None, default: str) -> Chat:
    chat = state.get_or_create_chat(chat_id, chat_type, default)
    if name:
        chat.name = name
    return chat


def _sender(req: InjectRequest, chat: Chat) -> str:
    """Who a message comes from: a person's @c.us address, or the chat itself when it has no person behind."""
    if req.from_me:
        return dialog_id(BUSINESS_PHONE)
    if req.chat == "channel" or (req.chat == "lid" and not req.lid_with_phone):
        return chat.id
    assert req.phone is not None
    return dialog_id(req.phone)


def _contact_name(req: InjectRequest, chat: Chat) -> str | None:
    if req.chat in ("group", "channel"):
        return chat.name
    if req.chat == "status":
        return req.contact_name  # the one chat holds many contacts' statuses
    return chat.contact_name


def _recorded(audio_base64: str | None) -> bytes | None:
    if audio_base64 is None:
        return None
    try:
        return base64.b64decode(audio_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "audio_base64 is not base64") from exc


def _body_of(state: SandboxState, req: InjectRequest, chat: Chat, message: dict[str, Any]) -> None:
    """Fill the type-specific part of an injected message (media bytes, reaction target)."""
    if req.type == "ptt":
        transcript = req.transcript if req.transcript is not None else (req.text or DEFAULT_TRANSCRIPT)
        data = voice_bytes(transcript, req.corrupt_audio, recorded=_recorded(req.audio_base64))
    elif req.type in ("image", "document"):
        data = media_bytes(req.type, req.text)
        message["caption"] = req.caption if req.caption is not None else (req.text or None)
    else:
        if req.type == "reaction":
            message["body"] = req.text or "👍"
            target = chat.last_message()
            message["stanza_id"] = target["id"] if target else ""
        return
    file_name = media_file_name(req.type)
    attach_media(message, data, file_name, req.length_seconds)
    state.add_file(file_name, data, media_mime(req.type))


def inject_message(state: SandboxState, req: InjectRequest) -> dict[str, Any]:
    """A customer (or the operator on the business phone, from_me) writes into a chat."""
    chat = _target_chat(state, req)
    time = req.time if req.time is not None else state.now_unix()
    if req.from_me:
        recipient, sender_name = chat.id, ""
    else:
        recipient, sender_name = BUSINESS_PHONE, req.sender_name or req.contact_name or ""
    message = build_message(
        message_type=req.type,
        body=req.text,
        sender=_sender(req, chat),
        recipient=recipient,
        chat_id=chat.id,
        chat_type=chat.chat_type,
        is_me=req.from_me,
        time=time,
        sender_name=sender_name,
        contact_name=_contact_name(req, chat),
    )
    if req.chat in ("status", "channel", "lid"):
        message["whatsapp_chat_id"] = chat.id
    if req.chat == "lid" and req.lid_with_phone and req.phone:
        message["contact_phone"] = req.phone
    if chat.business_name and not req.from_me:
        message["business_name"] = chat.business_name
    _body_of(state, req, chat, message)
    return state.add_message(chat, message)


def chat_for_recipient(state: SandboxState, recipient: str) -> Chat | None:
    """The chat a send goes to, created when the bot writes first; None for an invalid recipient."""
    if _GROUP_ID.match(recipient):
        return state.get_or_create_chat(recipient, "group", DEFAULT_GROUP_NAME)
    phone = normalize_phone(recipient)
    if phone is None:
        return None
    return state.get_or_create_chat(dialog_id(phone), "dialog", phone)


def send_from_bot(
    state: SandboxState, chat: Chat, body: str, *, kind: str, reply_to: str | None = None
) -> dict[str, Any]:
    """Deliver a bot message: Wappi echoes it into the chat as is_me, and the sandbox records it."""
    now = state.now_unix()
    message = build_message(
        message_type="chat",
        body=body,
        sender=BUSINESS_PHONE,
        recipient=chat.id,
        chat_id=chat.id,
        chat_type=chat.chat_type,
        is_me=True,
        time=now,
        contact_name=chat.name if chat.chat_type == "group" else chat.contact_name,
        reply_to=reply_to,
        from_where="api",
    )
    state.add_message(chat, message)
    recipient = chat.id if chat.chat_type == "group" else chat.id.split("@", 1)[0]
    state.record_sent(
        {
            "id": message["id"],
            "kind": kind,
            "recipient": recipient,
            "chat_id": chat.id,
            "body": body,
            "reply_to": reply_to,
            "time": now,
        }
    )
    return message
