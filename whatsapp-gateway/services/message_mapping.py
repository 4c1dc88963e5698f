"""How the poller turns a Wappi message it forwards into a queue body (the contracts); which messages it
forwards is chat_rules' job.

A message is the client's or, typed on the business phone, the operator's (`sender`). An operator's body says
so ("sender": "operator") and names nobody: its senderName is the business's, not the client's."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.message_log import TO_INCOMING, TO_VOICE
from services.wappi_models import WappiMessage
from utils.clock import from_unix, to_local_iso

VOICE_TYPES = {"ptt": "voice", "audio": "audio"}
# Placeholders for media without a caption: the agent still learns that the customer sent something.
MEDIA_PLACEHOLDERS = {
    "image": ("image", "[изображение]"),
    "video": ("video", "[видео]"),
    "document": ("document", "[документ]"),
    "sticker": ("sticker", "[стикер]"),
    "location": ("location", "[геолокация]"),
    "vcard": ("other", "[контакт]"),
    "multi_vcard": ("other", "[контакт]"),
}
OTHER_PLACEHOLDER = "[сообщение неподдерживаемого типа]"
MAX_NAME = 255
# A message time further ahead than this is wrong; believed, it would move a chat's cursor past
# everything the customer writes next.
FUTURE_LIMIT = timedelta(days=1)
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)  # before WhatsApp existed
# Who wrote a message in a client's chat (contracts/incoming_messages.schema.json `sender`).
BY_CLIENT = "client"
BY_OPERATOR = "operator"


@dataclass(frozen=True)
class Forward:
    """A message to forward: its row fields and the body for its queue."""

    message_id: str
    chat_id: str
    phone: str
    message_type: str
    text: str | None
    is_voice: bool
    target_queue: str
    body: dict[str, Any]
    sent_at: datetime
    sender: str = BY_CLIENT


def message_time(message: WappiMessage, fallback: datetime) -> datetime:
    """When the message was written; `fallback` (the poller's now) when Wappi gives no usable time."""
    found = None
    if message.time:
        found = from_unix(message.time if message.time < 1e12 else message.time / 1000)
    elif message.timestamp:
        try:
            parsed = datetime.fromisoformat(message.timestamp)
        except ValueError:
            parsed = None
        found = parsed if parsed is not None and parsed.tzinfo is not None else None
    if found is None or not EARLIEST <= found <= fallback + FUTURE_LIMIT:
        return fallback
    return found


def _clip(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:MAX_NAME] if value else None


def contact_info(message: WappiMessage) -> dict[str, str | None]:
    # contact_name is the business's address-book entry, often "Имя Фамилия"; senderName the push name.
    name = _clip(message.contact_name) or _clip(message.sender_name)
    last = _clip(message.contact_last_name) if message.contact_name else _clip(message.sender_last_name)
    full = _clip(" ".join(part for part in (name, last) if part))
    return {
        "FirstName": name.split()[0] if name else None,
        "FullName": full,
        "PushName": _clip(message.sender_name),
        "BusinessName": _clip(message.business_name),
    }


def to_forward(
    message: WappiMessage, chat_id: str, phone: str, tz: ZoneInfo, now: datetime, sender: str = BY_CLIENT
) -> Forward:
    sent_at = message_time(message, now)
    info: dict[str, str | None] | None = contact_info(message) if sender == BY_CLIENT else None
    sender_name = (info["FullName"] or info["PushName"]) if info else None
    common = {
        "message_id": message.id,
        "chat_id": chat_id,
        "phone_number": phone,
    }
    timestamp = to_local_iso(sent_at, tz)
    if message.type in VOICE_TYPES:
        body = {
            **common,
            "voice_url": message.file_link,
            "length_seconds": message.length_seconds,
            "timestamp": timestamp,
            "sender_name": sender_name,
            "contact_info": info,
        }
        # The voice worker learns the sender from the message's row (voice_transcription has no field).
        return Forward(
            message.id, chat_id, phone, VOICE_TYPES[message.type], None, True, TO_VOICE, body, sent_at, sender
        )

    if message.type in (None, "chat", "text"):
        message_type, text = "text", message.body or ""
    elif message.type in MEDIA_PLACEHOLDERS:
        message_type, placeholder = MEDIA_PLACEHOLDERS[message.type]
        if message.type == "document" and message.file_name and not message.caption:
            placeholder = f"[документ: {message.file_name}]"
        text = (message.caption or "").strip() or placeholder
    else:
        message_type, text = "other", (message.caption or "").strip() or OTHER_PLACEHOLDER
    body = {
        **common,
        "sender_name": sender_name,
        "message_text": text,
        "is_voice": False,
        "voice_url": None,
        "timestamp": timestamp,
        "contact_info": info,
        "message_type": message_type,
    }
    if sender != BY_CLIENT:
        body["sender"] = sender  # absent means the client: their bodies stay as they were
    return Forward(message.id, chat_id, phone, message_type, text, False, TO_INCOMING, body, sent_at, sender)
