"""The business's time: its zone (TIMEZONE), working days and hours, and the call-slot grid.

All of Kazakhstan is UTC+5 since 2024-03-01; the `tzdata` package carries that rule for Asia/Almaty.
The module functions take the zone explicitly; `WorkingHours` carries the configured one so that services
never pick a zone of their own.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

ASTANA = ZoneInfo("Asia/Almaty")
SLOT_MINUTES = 30


def _kazakhstan_holidays() -> holidays.HolidayBase:
    """Kazakhstan's public holidays. Its module is loaded on its own: importing it as holidays.countries.…
    (or through country_holidays) first imports the modules of all 250 countries, over 10 MB of memory."""
    path = Path(holidays.__file__).parent / "countries" / "kazakhstan.py"
    spec = importlib.util.spec_from_file_location("holidays_kazakhstan", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Kazakhstan's holidays are not at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Kazakhstan()


_KZ_HOLIDAYS = _kazakhstan_holidays()
WEEKDAYS_RU = ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье")
# A search longer than this means the arguments leave no free slot at all (e.g. start_hour >= end_hour).
_MAX_SEARCH_DAYS = 366


@dataclass(frozen=True)
class WorkingHours:
    """Working hours in the business's zone, and the grid calls are booked on."""

    start_hour: int = 10
    end_hour: int = 18
    timezone_name: str = "Asia/Almaty"
    slot_minutes: int = SLOT_MINUTES
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.timezone_name))

    def local(self, dt: datetime) -> datetime:
        return to_local(dt, self.tz)

    def format(self, dt: datetime) -> str:
        """ "2026-03-16 15:30": how the prompts show a moment."""
        return format_local(dt, self.tz)

    def format_slot(self, dt: datetime) -> str:
        return format_slot_ru(dt, self.tz)

    def is_working_time(self, dt: datetime) -> bool:
        return is_working_time(dt, self.start_hour, self.end_hour, self.slot_minutes, self.tz)

    def next_free_slot(self, after: datetime, taken: set[datetime]) -> datetime:
        return next_working_slot(after, taken, self.start_hour, self.end_hour, self.slot_minutes, self.tz)

    def next_working_start(self, dt: datetime) -> datetime:
        return next_working_start(dt, self.start_hour, self.end_hour, self.tz)

    def working_end(self, dt: datetime) -> datetime:
        """When working hours end on `dt`'s calendar day."""
        return _at_hour(self.local(dt).date(), self.end_hour, self.tz)

    def day_start(self, dt: datetime) -> datetime:
        """Midnight of `dt`'s calendar day in the business's zone."""
        return self.local(dt).replace(hour=0, minute=0, second=0, microsecond=0)


def to_local(dt: datetime, tz: ZoneInfo) -> datetime:
    """The same instant in `tz`. Naive datetimes are refused: their zone is a guess."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    return dt.astimezone(tz)


def to_astana(dt: datetime) -> datetime:
    return to_local(dt, ASTANA)


def format_local(dt: datetime, tz: ZoneInfo = ASTANA) -> str:
    return to_local(dt, tz).strftime("%Y-%m-%d %H:%M")


def format_slot_ru(dt: datetime, tz: ZoneInfo = ASTANA) -> str:
    """ "16.03.2026 в 10:30 (понедельник)" — the form the bot writes a call slot in."""
    local = to_local(dt, tz)
    return f"{local:%d.%m.%Y в %H:%M} ({WEEKDAYS_RU[local.weekday()]})"


def is_working_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _KZ_HOLIDAYS


def is_working_time(
    dt: datetime,
    start_hour: int = 10,
    end_hour: int = 18,
    slot_minutes: int = SLOT_MINUTES,
    tz: ZoneInfo = ASTANA,
) -> bool:
    """True when a `slot_minutes` slot starting at `dt` fits in working hours of a working day."""
    local = to_local(dt, tz)
    if not is_working_day(local.date()):
        return False
    slot_end = local + timedelta(minutes=slot_minutes)
    day = local.date()
    return _at_hour(day, start_hour, tz) <= local and slot_end <= _at_hour(day, end_hour, tz)


def next_working_slot(
    after: datetime,
    taken: set[datetime],
    start_hour: int = 10,
    end_hour: int = 18,
    slot_minutes: int = SLOT_MINUTES,
    tz: ZoneInfo = ASTANA,
) -> datetime:
    """The first free slot on the `slot_minutes` grid at or after `after`, in `tz`."""
    taken_instants = {to_local(t, tz) for t in taken}
    candidate = _ceil_to_grid(to_local(after, tz), slot_minutes, tz)
    limit = candidate + timedelta(days=_MAX_SEARCH_DAYS)
    step = timedelta(minutes=slot_minutes)
    while candidate < limit:
        if is_working_time(candidate, start_hour, end_hour, slot_minutes, tz):
            if candidate not in taken_instants:
                return candidate
            candidate += step
        else:
            candidate = _next_start_after(candidate, start_hour, tz)
    raise ValueError(f"no free {slot_minutes}-minute slot from {start_hour}:00 to {end_hour}:00 in a year")


def next_working_start(
    dt: datetime, start_hour: int = 10, end_hour: int = 18, tz: ZoneInfo = ASTANA
) -> datetime:
    """`dt` itself if it falls within working hours of a working day, else the next working day's start."""
    local = to_local(dt, tz)
    day = local.date()
    if is_working_day(day):
        if local < _at_hour(day, start_hour, tz):
            return _at_hour(day, start_hour, tz)
        if local < _at_hour(day, end_hour, tz):
            return local
    return _next_start_after(local, start_hour, tz)


def _at_hour(day: date, hour: int, tz: ZoneInfo) -> datetime:
    # timedelta rather than time(hour) so that end_hour=24 means midnight
    return datetime.combine(day, time(0), tzinfo=tz) + timedelta(hours=hour)


def _next_start_after(local: datetime, start_hour: int, tz: ZoneInfo) -> datetime:
    """start_hour of the working day after `local`'s date (or of that date, if not reached yet)."""
    day = local.date()
    if local >= _at_hour(day, start_hour, tz) or not is_working_day(day):
        day += timedelta(days=1)
    for _ in range(_MAX_SEARCH_DAYS):
        if is_working_day(day):
            return _at_hour(day, start_hour, tz)
        day += timedelta(days=1)
    raise ValueError(f"no working day within a year after {day.isoformat()}")


def _ceil_to_grid(local: datetime, slot_minutes: int, tz: ZoneInfo) -> datetime:
    midnight = _at_hour(local.date(), 0, tz)
    elapsed = local - midnight
    step = timedelta(minutes=slot_minutes)
    slots = -(-elapsed // step)  # ceiling division of timedeltas
    return midnight + slots * step
