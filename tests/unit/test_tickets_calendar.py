"""SLA arithmetic in working hours across a weekend, a public holiday and a make-up workday."""

from __future__ import annotations

import datetime as dt

import pytest

from govkit.errors import InvalidArgument
from services.tickets.calendar import CHINA_STANDARD_TIME, WorkingCalendar, deadline, parse_days

CST = CHINA_STANDARD_TIME
H = dt.timedelta(hours=1)

# Spring Festival 2025 as published: 28 Jan - 4 Feb off, Sunday 26 Jan and Saturday 8 Feb worked.
SPRING_2025 = """date,kind,name
2025-01-26,workday,春节调休
2025-01-28,holiday,春节
2025-01-29,holiday,春节
2025-01-30,holiday,春节
2025-01-31,holiday,春节
2025-02-03,holiday,春节
2025-02-04,holiday,春节
2025-02-08,workday,春节调休
"""
CAL = WorkingCalendar().with_days(parse_days(SPRING_2025))


def at(day: str, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hh, mm), CST)


def test_within_one_day_skips_the_lunch_break() -> None:
    # Tue 2025-03-11 10:00 + 3 working hours: 2 h until 12:00, lunch, 1 h from 14:00.
    assert CAL.add_working_time(at("2025-03-11", 10), 3 * H) == at("2025-03-11", 15)


def test_across_a_weekend() -> None:
    # Fri 2025-03-14 16:30 + 2 h: 1 h on Friday, nothing on Sat/Sun, 1 h on Monday.
    assert CAL.add_working_time(at("2025-03-14", 16, 30), 2 * H) == at("2025-03-17", 9, 30)


def test_across_a_public_holiday_and_onto_a_make_up_workday() -> None:
    # Mon 27 Jan 17:00, 8 working hours: 0.5 h on the 27th; 28 Jan-4 Feb are off (holidays and
    # a weekend); Wed 5 Feb gives a full 7-hour day; the last 0.5 h runs on Thu 6 Feb.
    assert CAL.add_working_time(at("2025-01-27", 17), 8 * H) == at("2025-02-06", 9)
    # Sat 8 Feb is a make-up workday: a ticket filed that morning runs on it.
    assert CAL.add_working_time(at("2025-02-08", 8, 30), 2 * H) == at("2025-02-08", 10, 30)
    # Sunday 26 Jan was worked too; an ordinary Sunday is not.
    assert CAL.is_workday(dt.date(2025, 1, 26)) and not CAL.is_workday(dt.date(2025, 3, 16))


def test_outside_hours_the_clock_starts_at_the_next_working_period() -> None:
    assert CAL.add_working_time(at("2025-03-11", 20), 1 * H) == at("2025-03-12", 9, 30)
    assert CAL.add_working_time(at("2025-03-11", 12, 30), 1 * H) == at("2025-03-11", 15)
    # Ending exactly at the close of a period is that moment, not the next morning.
    assert CAL.add_working_time(at("2025-03-11", 16, 30), 1 * H) == at("2025-03-11", 17, 30)


def test_working_time_between_is_the_inverse() -> None:
    start = at("2025-01-24", 11)  # the Friday before the festival week
    for hours in (0.5, 3, 7, 8, 13, 40):
        end = CAL.add_working_time(start, dt.timedelta(hours=hours))
        assert CAL.working_time_between(start, end) == dt.timedelta(hours=hours)
    assert CAL.working_time_between(at("2025-01-28", 9), at("2025-02-04", 17)) == dt.timedelta(0)


def test_calendar_hours_ignore_the_calendar_and_timezones_are_kept() -> None:
    start = dt.datetime(2025, 1, 27, 9, 0, tzinfo=dt.UTC)  # 17:00 in China
    assert deadline(start, 24 * H, working_hours=False, calendar=CAL) == start + 24 * H
    due = deadline(start, 8 * H, working_hours=True, calendar=CAL)
    assert due.tzinfo == dt.UTC and due == at("2025-02-06", 9).astimezone(dt.UTC)


def test_bad_calendar_files_name_every_bad_line() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_days("date,kind\n2025-13-01,holiday\n2025-01-27,workday\n2025-02-08,party\n")
    message = str(err.value)
    assert "line 2" in message and "line 3" in message and "line 4" in message
    with pytest.raises(InvalidArgument):
        parse_days("day,type\n")
    with pytest.raises(InvalidArgument):
        WorkingCalendar(holidays=frozenset({dt.date(2025, 2, 8)}), workdays=frozenset({dt.date(2025, 2, 8)}))
    with pytest.raises(ValueError):
        CAL.add_working_time(dt.datetime(2025, 1, 1, 9), H)  # naive
