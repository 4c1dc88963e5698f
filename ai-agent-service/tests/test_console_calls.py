"""The console's calls page: one manager's week of booked calls, each linking to its chat, the week chosen by
its arrows and the manager by the picker."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from models import Contact, ScheduledCall
from service_kit.managers import Manager
from tests.console_client import browser, console_app

AIGERIM, DANIYAR = Manager("Айгерим", "77011110001"), Manager("Данияр", "77011110002")


@pytest.fixture
async def app(settings, db, broker, queues) -> AsyncIterator[FastAPI]:
    async with console_app(settings, MANAGERS=(AIGERIM, DANIYAR)) as app:
        yield app


@pytest.fixture
async def booked(db):
    """Thursday 11:00 with Aigerim, Friday 16:30 with Daniyar, next Monday 10:00 with Aigerim, and a call
    with Aigerim that was cancelled."""
    async with db.begin() as session:
        alfa = Contact(phone_number="77015550501", name="Алия")
        beta = Contact(phone_number="77015550502", full_name="Бекзат Омаров")
        session.add_all([alfa, beta])
        await session.flush()

        def call(contact, at, manager, status="scheduled"):
            return ScheduledCall(
                contact_id=contact.id,
                scheduled_at=at,
                status=status,
                manager_name=manager.name,
                manager_phone=manager.phone,
            )

        session.add_all(
            [
                call(alfa, datetime(2026, 11, 26, 6, 0, tzinfo=UTC), AIGERIM),
                call(beta, datetime(2026, 11, 27, 11, 30, tzinfo=UTC), DANIYAR),
                call(beta, datetime(2026, 11, 30, 5, 0, tzinfo=UTC), AIGERIM),
                call(beta, datetime(2026, 11, 26, 7, 0, tzinfo=UTC), AIGERIM, status="cancelled"),
            ]
        )


def calls_on(page: str) -> list[tuple[str, str]]:
    """(the chat it links to, the name shown) for each call on the page."""
    return re.findall(r'<a class="call" data-call="\d+" href="/console/conversations/(\d+)">([^<]+)<', page)


async def test_the_week_shows_the_first_managers_booked_calls_in_their_slots(operator, booked):
    page = await operator.get("/console/calls")

    assert page.status_code == 200
    assert "Созвоны: Айгерим" in page.text and "23.11 — 29.11.2026" in page.text
    assert calls_on(page.text) == [("77015550501", "Алия")]  # the cancelled one is not on the calendar
    eleven = page.text.split('<th scope="row">11:00</th>')[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", eleven, re.S)
    assert "Алия" in cells[3] and all("Алия" not in cell for n, cell in enumerate(cells) if n != 3)


async def test_another_manager_and_the_next_week_are_chosen_in_the_address(operator, booked):
    daniyar = await operator.get("/console/calls", params={"manager": DANIYAR.phone})
    next_week = await operator.get("/console/calls", params={"week": "2026-11-30", "manager": AIGERIM.phone})

    assert calls_on(daniyar.text) == [("77015550502", "Бекзат Омаров")]
    assert "16:30" in daniyar.text
    assert "/console/calls?week=2026-11-30&amp;manager=77011110002" in daniyar.text  # the arrow keeps him
    assert "30.11 — 06.12.2026" in next_week.text
    assert calls_on(next_week.text) == [("77015550502", "Бекзат Омаров")]


async def test_the_calls_page_needs_a_session(app, booked):
    async with browser(app, "10.1.0.9") as anonymous:
        page = await anonymous.get("/console/calls")

    assert page.status_code == 303 and page.headers["location"] == "/console/sign-in?next=/console/calls"
