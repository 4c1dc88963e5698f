"""Wappi message objects shaped like the real payloads in whatsapp-gateway/tests/wappi_samples."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

BUSINESS_PHONE = "77000000000"
ASTANA = timezone(timedelta(hours=5))
TRANSCRIPT_MARKER = b"SANDBOX-TRANSCRIPT:"
# Real signed file links expire after two days.
FILE_LINK_TTL_S = 172800

_MEDIA_MIME = {
    "ptt": "audio/ogg; codecs=opus",
    "image": "image/jpeg",
    "document": "application/pdf",
}
_MEDIA_EXT = {"ptt": "ogg", "image": "jpg", "document": "pdf"}


def new_message_id() -> str:
    return uuid.uuid4().hex.upper()


def iso_astana(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, tz=ASTANA).isoformat()


def dialog_id(phone: str) -> str:
    return f"{phone}@c.us"


def phone_of(chat_or_address: str) -> str:
    return chat_or_address.split("@", 1)[0]


def fake_lid(phone: str) -> str:
    # WhatsApp's hidden-number id: deliberately unrelated to the phone, as in real payloads.
    digest = int(hashlib.sha1(phone.encode()).hexdigest(), 16)
    return f"{digest % 10**15:015d}@lid"


def voice_bytes(transcript: str, corrupt: bool, recorded: bytes | None = None) -> bytes:
    """OGG-looking bytes (or a real recording) whose transcript the fake Gemini can read back; corrupt ones
    carry no marker."""
    if corrupt:
        return b"\x00\x13" + os.urandom(256)
    header = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01\x38\x01\x80\x3e\x00\x00"
    return (recorded or header) + TRANSCRIPT_MARKER + transcript.encode("utf-8")


def media_bytes(message_type: str, text: str) -> bytes:
    if message_type == "image":
        return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + text.encode("utf-8") + b"\xff\xd9"
    return b"%PDF-1.4\n% sandbox document\n" + text.encode("utf-8") + b"\n%%EOF\n"


def media_file_name(message_type: str) -> str:
    return f"{uuid.uuid4()}.{_MEDIA_EXT[message_type]}"


def build_message(
    *,
    message_type: str,
    body: str,
    sender: str,
    recipient: str,
    chat_id: str,
    chat_type: str,
    is_me: bool,
    time: int,
    sender_name: str = "",
    contact_name: str | None = None,
    caption: str | None = None,
    reply_to: str | None = None,
    from_where: str = "phone",
) -> dict[str, Any]:
    return {
        "id": new_message_id(),
        "profile_id": "",
        "wh_type": "incoming_message",
        "timestamp": iso_astana(time),
        "time": time,
        "body": body,
        "type": message_type,
        "from": sender if "@" in sender else dialog_id(sender),
        "to": recipient if "@" in recipient else dialog_id(recipient),
        "senderName": sender_name,
        "senderLastName": "",
        "chatId": chat_id,
        "caption": caption,
        "from_where": from_where,
        "contact_name": contact_name,
        "contact_last_name": "",
        "contact_phone": "",
        "contact_username": "",
        "is_forwarded": False,
        "isReply": reply_to is not None,
        "is_edited": False,
        "stanza_id": reply_to or "",
        "is_me": is_me,
        "chat_type": chat_type,
        "isGif": False,
        "thumbnail": "",
        "picture": "",
        "wappi_bot_id": "",
        "is_deleted": False,
        "is_bot": False,
        "attaches": None,
        "is_blacklist": False,
        "whatsapp_chat_id": fake_lid(phone_of(chat_id)),
        "platform": "whatsapp",
        "is_callback": False,
        "is_command": False,
        "is_topic": False,
    }


def attach_media(message: dict[str, Any], data: bytes, file_name: str, length_seconds: int) -> None:
    """Add the media fields of a ptt/image/document message; the link is rendered per request."""
    message_type = message["type"]
    message["body"] = base64.b64encode(data).decode("ascii")
    message["file_name"] = file_name
    message["mimetype"] = _MEDIA_MIME[message_type]
    message["file_link"] = None
    message["file_link_expire"] = message["time"] + FILE_LINK_TTL_S
    duration = length_seconds if message_type == "ptt" else 0
    if message_type == "ptt":
        message["length_seconds"] = length_seconds
    message["media_info"] = {
        "width": 0,
        "height": 0,
        "size": len(data),
        "duration": duration,
        "is_round": False,
        "is_group": False,
        "grouped_id": "",
    }


def media_mime(message_type: str) -> str:
    return _MEDIA_MIME[message_type]


def render_message(message: dict[str, Any], base_url: str, profile_id: str) -> dict[str, Any]:
    """The message as a caller sees it: internal keys dropped, file link on the caller's base URL."""
    shown = {k: v for k, v in message.items() if not k.startswith("_")}
    shown["profile_id"] = profile_id
    if shown.get("file_name"):
        shown["file_link"] = f"{base_url.rstrip('/')}/files/{shown['file_name']}"
    return shown
