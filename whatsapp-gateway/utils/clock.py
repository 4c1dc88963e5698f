"""Time as the gateway shows and stores it: the business's local time, Wappi's unix seconds, the local day."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


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
