"""What Wappi answers, as the gateway's own types; parsed defensively (field names vary, see WAPPI.md)."""

from dataclasses import dataclass
from typing import Any

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class WappiMessage(BaseModel):
    """A message as Wappi returns it (see WAPPI.md); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    type: str | None = None
    wh_type: str | None = None
    status: str | None = None
    body: str | None = None
    caption: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    chat_id: str | None = Field(default=None, alias="chatId")
    chat_type: str | None = None
    sender_name: str | None = Field(default=None, alias="senderName")
    sender_last_name: str | None = Field(default=None, alias="senderLastName")
    contact_name: str | None = None
    contact_last_name: str | None = None
    business_name: str | None = None
    is_me: bool = False
    time: float | None = None
    timestamp: str | None = None
    file_link: str | None = None
    file_name: str | None = None
    mimetype: str | None = None


@dataclass(frozen=True)
class Chat:
    id: str
    name: str | None
    chat_type: str
    last_time: int | None
    last_message_id: str | None


@dataclass(frozen=True)
class SendResult:
    message_id: str | None
    status: str


@dataclass(frozen=True)
class ProfileStatus:
    authorized: bool
    app_status: str | None


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    mime_type: str | None
    file_name: str | None


def _as_unix(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number / 1000) if number > 1e12 else int(number)  # some answers carry milliseconds


def _chat_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        raw = raw.get("_serialized") or (
            f"{raw.get('user')}@{raw.get('server')}" if raw.get("user") else None
        )
    return str(raw) if raw else None


def parse_chat(item: dict[str, Any]) -> Chat | None:
    chat_id = _chat_id(item.get("id") or item.get("chat_id") or item.get("chatId"))
    if not chat_id:
        return None
    last = item.get("last_message_data") or item.get("last_message") or {}
    last = last if isinstance(last, dict) else {}
    last_time = (
        _as_unix(item.get("last_time")) or _as_unix(item.get("last_timestamp")) or _as_unix(last.get("time"))
    )
    chat_type = (
        item.get("chat_type") or item.get("type") or ("group" if chat_id.endswith("@g.us") else "dialog")
    )
    return Chat(
        id=chat_id,
        name=item.get("name"),
        chat_type=str(chat_type),
        last_time=last_time,
        last_message_id=str(last["id"]) if last.get("id") else None,
    )


def parse_messages(items: list[Any]) -> list[WappiMessage]:
    parsed = []
    for item in items:
        try:
            parsed.append(WappiMessage.model_validate(item))
        except ValidationError as exc:
            logger.warning("Skipping a Wappi message that does not parse: {}", exc.errors()[:2])
    return parsed
