"""Astana time, working days and call slots.

All of Kazakhstan is UTC+5 since 2024-03-01; the `tzdata` package carries that rule for Asia/Almaty.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

ASTANA = ZoneInfo("Asia/Almaty")

_KZ_HOLIDAYS = holidays.country_holidays("KZ")
_WEEKDAYS_RU = ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье")
# A search longer than this means the arguments leave no free slot at all (e.g. start_hour >= end_hour).
_MAX_SEARCH_DAYS = 366


def to_astana(dt: datetime) -> datetime:
    """The same instant in Astana time. Naive datetimes are refused: their zone is a guess."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    return dt.astimezone(ASTANA)


def format_astana(dt: datetime) -> str:
    return to_astana(dt).strftime("%Y-%m-%d %H:%M")


def format_slot_ru(dt: datetime) -> str:
    """ "16.03.2026 в 10:30 (понедельник)" — the form the bot writes a call slot in."""
    local = to_astana(dt)
    return f"{local:%d.%m.%Y в %H:%M} ({_WEEKDAYS_RU[local.weekday()]})"


def is_working_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _KZ_HOLIDAYS


def is_working_time(
    local_dt: datetime, start_hour: int = 10, end_hour: int = 18, slot_minutes: int = 30
) -> bool:
    """True when a `slot_minutes` slot starting at `local_dt` fits in working hours of a working day."""
    local = to_astana(local_dt)
    if not is_working_day(local.date()):
        return False
    slot_end = local + timedelta(minutes=slot_minutes)
    return _at_hour(local.date(), start_hour) <= local and slot_end <= _at_hour(local.date(), end_hour)


def next_working_slot(
    after: datetime,
    taken: set[datetime],
    start_hour: int = 10,
    end_hour: int = 18,
    slot_minutes: int = 30,
) -> datetime:
    """The first free slot on the `slot_minutes` grid at or after `after`, in Astana time."""
    taken_instants = {to_astana(t) for t in taken}
    candidate = _ceil_to_grid(to_astana(after), slot_minutes)
    limit = candidate + timedelta(days=_MAX_SEARCH_DAYS)
    step = timedelta(minutes=slot_minutes)
    while candidate < limit:
        if is_working_time(candidate, start_hour, end_hour, slot_minutes):
            if candidate not in taken_instants:
                return candidate
            candidate += step
        else:
            candidate = _next_start_after(candidate, start_hour)
    raise ValueError(f"no free {slot_minutes}-minute slot from {start_hour}:00 to {end_hour}:00 in a year")


def next_working_start(dt: datetime, start_hour: int = 10, end_hour: int = 18) -> datetime:
    """`dt` itself if it falls within working hours of a working day, else the next working day's start."""
    local = to_astana(dt)
    day = local.date()
    if is_working_day(day):
        if local < _at_hour(day, start_hour):
            return _at_hour(day, start_hour)
        if local < _at_hour(day, end_hour):
            return local
    return _next_start_after(local, start_hour)


def _at_hour(day: date, hour: int) -> datetime:
    # timedelta rather than time(hour) so that end_hour=24 means midnight
    return datetime.combine(day, time(0), tzinfo=ASTANA) + timedelta(hours=hour)


def _next_start_after(local: datetime, start_hour: int) -> datetime:
    """start_hour of the working day after `local`'s date (or of that date, if not reached yet)."""
    day = local.date()
    if local >= _at_hour(day, start_hour) or not is_working_day(day):
        day += timedelta(days=1)
    for _ in range(_MAX_SEARCH_DAYS):
        if is_working_day(day):
            return _at_hour(day, start_hour)
        day += timedelta(days=1)
    raise ValueError(f"no working day within a year after {day.isoformat()}")


def _ceil_to_grid(local: datetime, slot_minutes: int) -> datetime:
    midnight = _at_hour(local.date(), 0)
    elapsed = local - midnight
    step = timedelta(minutes=slot_minutes)
    slots = -(-elapsed // step)  # ceiling division of timedeltas
    return midnight + slots * step
