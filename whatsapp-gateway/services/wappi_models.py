"""What Wappi answers, as the gateway's own types; parsed defensively (field names vary, see WAPPI.md)."""

import math
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_ID = 255  # message_logs.message_id and the contracts' message_id
LAST_UNIX_MS = 32_503_680_000_000  # the year 3000: anything later is garbage, not a time


class WappiMessage(BaseModel):
    """A message as Wappi returns it (see WAPPI.md); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True)

    id: str = Field(min_length=1, max_length=MAX_ID)
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
    contact_phone: str | None = None  # the person's real phone, also in a hidden-number (@lid) chat
    business_name: str | None = None
    is_me: bool = False
    time: float | None = None
    timestamp: str | None = None
    file_link: str | None = None
    file_name: str | None = None
    mimetype: str | None = None
    length_seconds: float | None = None  # a voice note's duration, as Wappi reports it

    @model_validator(mode="before")
    @classmethod
    def _tolerate_odd_fields(cls, data: Any) -> Any:
        """One unreadable optional field (a list where text belongs, a time that is no number) becomes
        null instead of costing the whole message. `id` and `is_me` stay strict: without them a message
        cannot be told apart from the bot's own."""
        if not isinstance(data, dict):
            return data
        cleaned = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if name in ("id", "is_me") or cleaned.get(key) is None:
                continue
            value = cleaned[key]
            if name == "time":
                cleaned[key] = _as_time(value)
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                cleaned[key] = None
        return cleaned


@dataclass(frozen=True)
class Chat:
    id: str
    name: str | None
    chat_type: str
    last_time: int | None
    last_message_id: str | None
    last_message_is_me: bool = False  # the newest message is the business's own


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


def _as_time(value: Any) -> float | None:
    """Unix seconds or milliseconds as Wappi sends them; None for anything that is not a usable time."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and 0 < number <= LAST_UNIX_MS else None


def _as_unix(value: Any) -> int | None:
    number = _as_time(value)
    if number is None:
        return None
    return int(number / 1000) if number > 1e12 else int(number)  # some answers carry milliseconds


def _chat_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        raw = raw.get("_serialized") or (
            f"{raw.get('user')}@{raw.get('server')}" if raw.get("user") else None
        )
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    return str(raw)[:MAX_ID] if raw else None


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
    name = item.get("name")
    last_id = last.get("id")
    last_is_me = last.get("is_me", last.get("fromMe"))
    return Chat(
        id=chat_id,
        name=name if isinstance(name, str) else None,
        chat_type=str(chat_type),
        last_time=last_time,
        last_message_id=str(last_id) if isinstance(last_id, str | int) and last_id else None,
        last_message_is_me=last_is_me is True,
    )


def _where(loc: tuple) -> str:
    return ".".join(map(str, loc)) or "message"


def parse_messages(items: list[Any]) -> list[WappiMessage]:
    parsed = []
    problems = []
    for item in items:
        try:
            parsed.append(WappiMessage.model_validate(item))
        except ValidationError as exc:
            # Where and what, not the input: it can be a whole message (personal data, maybe megabytes).
            problems.append("; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()[:2]))
    if problems:
        logger.warning(
            "Skipping {} Wappi message(s) that do not parse, e.g. {}", len(problems), " | ".join(problems[:3])
        )
    return parsed
