"""Small pure functions shared by the workers and the API: time, phone numbers, chat ids."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_DIGITS = re.compile(r"\D+")


def utc_now() -> datetime:
    """The production clock: an aware UTC datetime (workers receive a clock like this one)."""
    return datetime.now(UTC)


def to_local_iso(moment: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 with the business offset, e.g. 2026-10-05T14:30:00+05:00 for Asia/Almaty."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def local_day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the calendar day that `now` falls on in `tz`."""
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def digits_only(value: str | None) -> str:
    return _DIGITS.sub("", value or "")


def phone_from_chat_id(chat_id: str | None) -> str:
    """`79115576362@c.us` -> `79115576362`; empty for group or hidden-number (@lid) ids."""
    if not chat_id or "@" not in chat_id:
        return digits_only(chat_id)
    user, _, server = chat_id.partition("@")
    if server not in ("c.us", "s.whatsapp.net"):
        return ""
    return digits_only(user)


def is_group_chat_id(chat_id: str | None) -> bool:
    return bool(chat_id) and chat_id.endswith("@g.us")


def is_valid_phone(phone: str) -> bool:
    return phone.isdigit() and 5 <= len(phone) <= 20
