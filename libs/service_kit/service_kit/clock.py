"""The clock both services run on: an aware UTC now, moved by CLOCK_OFFSET_SECONDS when rehearsing another
moment (a Monday morning, a holiday) on the sandbox. Handlers take it as a dependency, never read the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def offset_clock(seconds: float) -> Clock:
    """The machine's clock moved by `seconds` (CLOCK_OFFSET_SECONDS); the plain clock when 0."""
    if not seconds:
        return utc_now
    shift = timedelta(seconds=seconds)
    return lambda: datetime.now(UTC) + shift
