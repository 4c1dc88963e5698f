"""The calls page: one manager's week (Monday to Sunday in the business's zone) with the calls booked in it,
slot by slot through the working hours; a call outside them still shows, under the day. The week and the
manager are chosen in the address (?week=2026-12-07&manager=77011234567); each call links to its chat."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RuntimeDep, SessionDep
from console.pages import render
from console.session import SignedIn
from models import Contact, ScheduledCall
from service_kit.managers import Manager
from services.call_calendar import SCHEDULED
from utils.timezone_helper import WorkingHours, is_working_day

router = APIRouter(include_in_schema=False)
DAY_NAMES = ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс")
# Calls shown: booked ones and those already held; cancelled and moved ones are history in the chat.
SHOWN = (SCHEDULED, "completed")


class WeekChoice(BaseModel):
    week: date | None = Field(default=None, description="Any day of the week; this week when not given")
    manager: str = Field(default="", max_length=20, description="The manager's phone; the first when empty")


WeekDep = Annotated[WeekChoice, Query()]


@dataclass(frozen=True)
class CalendarCall:
    call: ScheduledCall
    phone: str
    name: str


@dataclass(frozen=True)
class Week:
    monday: date
    days: list[date]
    slots: list[time]  # the working day's slots, in the business's zone
    calls: dict[tuple[date, time], list[CalendarCall]]  # by the slot they start in
    off_grid: dict[date, list[CalendarCall]]  # calls at a time that is no slot of the working day
    manager: Manager | None  # None: one calendar without managers
    working: set[date]

    @property
    def previous(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def next(self) -> date:
        return self.monday + timedelta(days=7)

    @property
    def count(self) -> int:
        return sum(len(calls) for calls in self.calls.values()) + sum(len(c) for c in self.off_grid.values())


@router.get("/console/calls")
async def calls_page(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, choice: WeekDep
) -> HTMLResponse:
    agent = runtime.agent
    managers = agent.calls.managers
    manager = next((m for m in managers if m.phone == choice.manager), managers[0] if managers else None)
    today = agent.hours.local(agent.clock()).date()
    week = await week_of_calls(session, choice.week or today, manager, agent.hours)
    context = {"week": week, "managers": managers, "day_names": DAY_NAMES, "today": today}
    return render(request, "calls.html", context, runtime=runtime)


async def week_of_calls(
    session: AsyncSession, day: date, manager: Manager | None, hours: WorkingHours
) -> Week:
    """The calls of `manager` (every call when None) in the week of `day`."""
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    start = datetime.combine(monday, time(), hours.tz)
    query = (
        select(ScheduledCall, Contact.phone_number, Contact.name, Contact.full_name)
        .join(Contact, Contact.id == ScheduledCall.contact_id)
        .where(
            ScheduledCall.status.in_(SHOWN),
            ScheduledCall.scheduled_at >= start,
            ScheduledCall.scheduled_at < start + timedelta(days=7),
        )
        .order_by(ScheduledCall.scheduled_at, ScheduledCall.id)
    )
    if manager is not None:
        query = query.where(ScheduledCall.manager_phone == manager.phone)
    slots = _slots(hours)
    on_grid: dict[tuple[date, time], list[CalendarCall]] = defaultdict(list)
    off_grid: dict[date, list[CalendarCall]] = defaultdict(list)
    for call, phone, name, full_name in await session.execute(query):
        local = hours.local(call.scheduled_at)
        shown = CalendarCall(call, phone, name or full_name or f"+{phone}")
        if local.time() in slots:
            on_grid[(local.date(), local.time())].append(shown)
        else:
            off_grid[local.date()].append(shown)
    working = {d for d in days if is_working_day(d)}
    return Week(monday, days, slots, dict(on_grid), dict(off_grid), manager, working)


def _slots(hours: WorkingHours) -> list[time]:
    first = datetime.combine(date(2000, 1, 3), time(hours.start_hour))
    count = (hours.end_hour - hours.start_hour) * 60 // hours.slot_minutes
    return [(first + timedelta(minutes=n * hours.slot_minutes)).time() for n in range(count)]
