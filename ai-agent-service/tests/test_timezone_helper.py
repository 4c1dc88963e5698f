from datetime import UTC, date, datetime, timedelta

import pytest

from utils.timezone_helper import (
    ASTANA,
    format_local,
    format_slot_ru,
    is_working_day,
    is_working_time,
    next_working_slot,
    next_working_start,
    to_astana,
)


def astana(*args: int) -> datetime:
    return datetime(*args, tzinfo=ASTANA)


def test_astana_is_utc_plus_5_all_year_in_2026():
    assert astana(2026, 1, 15, 12).utcoffset() == timedelta(hours=5)
    assert astana(2026, 7, 15, 12).utcoffset() == timedelta(hours=5)
    assert to_astana(datetime(2026, 3, 16, 5, 0, tzinfo=UTC)) == astana(2026, 3, 16, 10, 0)
    assert to_astana(datetime(2026, 3, 16, 5, 0, tzinfo=UTC)).hour == 10


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        to_astana(datetime(2026, 3, 16, 10, 0))


def test_formats():
    moment = datetime(2026, 3, 16, 10, 30, tzinfo=UTC)
    assert format_local(moment) == "2026-03-16 15:30"
    assert format_slot_ru(moment) == "16.03.2026 в 15:30 (понедельник)"
    assert format_slot_ru(astana(2026, 3, 21, 11, 0)) == "21.03.2026 в 11:00 (суббота)"


def test_working_days_skip_weekends_and_kazakhstan_holidays():
    assert is_working_day(date(2026, 3, 16))  # Monday
    assert not is_working_day(date(2026, 3, 14))  # Saturday
    assert not is_working_day(date(2026, 3, 15))  # Sunday
    assert not is_working_day(date(2026, 12, 16))  # Independence Day, a Wednesday
    assert not is_working_day(date(2026, 3, 23))  # Nauryz, a Monday


def test_working_time_needs_the_whole_slot_inside_working_hours():
    assert is_working_time(astana(2026, 3, 16, 10, 0))
    assert is_working_time(astana(2026, 3, 16, 17, 30))
    assert not is_working_time(astana(2026, 3, 16, 9, 59))
    assert not is_working_time(astana(2026, 3, 16, 17, 45))
    assert not is_working_time(astana(2026, 3, 16, 18, 0))
    assert not is_working_time(astana(2026, 3, 14, 12, 0))  # Saturday
    assert is_working_time(datetime(2026, 3, 16, 5, 0, tzinfo=UTC))  # 10:00 in Astana
    assert not is_working_time(astana(2026, 3, 16, 17, 30), slot_minutes=60)


def test_saturday_moves_to_monday_morning():
    assert next_working_slot(astana(2026, 3, 14, 12, 0), set()) == astana(2026, 3, 16, 10, 0)


def test_friday_evening_slot_that_does_not_fit_moves_to_monday():
    assert next_working_slot(astana(2026, 3, 13, 17, 45), set()) == astana(2026, 3, 16, 10, 0)


def test_independence_day_is_skipped():
    assert next_working_slot(astana(2026, 12, 15, 20, 0), set()) == astana(2026, 12, 17, 10, 0)


def test_evening_moves_to_next_morning_and_result_is_astana_time():
    slot = next_working_slot(astana(2026, 3, 10, 20, 0), set())
    assert slot == astana(2026, 3, 11, 10, 0)
    assert slot.utcoffset() == timedelta(hours=5)
    assert format_slot_ru(slot) == "11.03.2026 в 10:00 (среда)"


def test_time_inside_working_hours_rounds_up_to_the_half_hour_grid():
    assert next_working_slot(astana(2026, 3, 11, 10, 7), set()) == astana(2026, 3, 11, 10, 30)
    assert next_working_slot(astana(2026, 3, 11, 10, 30), set()) == astana(2026, 3, 11, 10, 30)
    assert next_working_slot(astana(2026, 3, 11, 7, 15), set()) == astana(2026, 3, 11, 10, 0)


def test_taken_slots_are_skipped_compared_as_instants():
    taken = {
        datetime(2026, 3, 11, 5, 0, tzinfo=UTC),  # 10:00 Astana, stored as UTC
        astana(2026, 3, 11, 10, 30),
    }
    assert next_working_slot(astana(2026, 3, 11, 9, 0), taken) == astana(2026, 3, 11, 11, 0)


def test_last_slot_of_the_day_taken_moves_to_next_working_day():
    taken = {astana(2026, 3, 13, 17, 30)}  # Friday
    assert next_working_slot(astana(2026, 3, 13, 17, 10), taken) == astana(2026, 3, 16, 10, 0)


def test_custom_working_hours():
    assert next_working_slot(astana(2026, 3, 11, 8, 0), set(), start_hour=9, end_hour=13) == astana(
        2026, 3, 11, 9, 0
    )
    assert next_working_slot(astana(2026, 3, 11, 12, 45), set(), start_hour=9, end_hour=13) == astana(
        2026, 3, 12, 9, 0
    )


def test_next_working_start():
    inside = astana(2026, 3, 11, 14, 17)
    assert next_working_start(inside) == inside
    assert next_working_start(astana(2026, 3, 11, 8, 0)) == astana(2026, 3, 11, 10, 0)
    assert next_working_start(astana(2026, 3, 13, 18, 0)) == astana(2026, 3, 16, 10, 0)  # Friday 18:00
    assert next_working_start(astana(2026, 3, 14, 11, 0)) == astana(2026, 3, 16, 10, 0)  # Saturday
    assert next_working_start(astana(2026, 12, 15, 19, 0)) == astana(2026, 12, 17, 10, 0)
    assert next_working_start(datetime(2026, 3, 11, 9, 0, tzinfo=UTC)) == astana(2026, 3, 11, 14, 0)
