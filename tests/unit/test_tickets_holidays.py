"""The 2026 holiday file that `make run` loads into the working calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from demo.seed_tickets import HOLIDAYS_DIR, holiday_days
from services.tickets.calendar import CHINA_STANDARD_TIME, WorkingCalendar, parse_days

FILE = HOLIDAYS_DIR / "2026.csv"
D = dt.date


@pytest.fixture(scope="module")
def days() -> list[tuple[dt.date, str, str]]:
    return parse_days(FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cal(days: list[tuple[dt.date, str, str]]) -> WorkingCalendar:
    return WorkingCalendar().with_days(days)


def test_the_file_parses_with_its_comments_and_the_seeding_reads_the_same_rows(days) -> None:  # type: ignore[no-untyped-def]
    text = FILE.read_text(encoding="utf-8")
    assert text.startswith("#") and "国办发明电〔2025〕7号" in text
    assert holiday_days(2026) == days
    assert all(day.year == 2026 for day, _, _ in days)
    assert len({day for day, _, _ in days}) == len(days), "a date appears twice"


def test_every_holiday_period_and_make_up_day(days) -> None:  # type: ignore[no-untyped-def]
    by_name: dict[str, list[dt.date]] = {}
    for day, kind, name in days:
        if kind == "holiday":
            by_name.setdefault(name, []).append(day)
    lengths = {name: len(ds) for name, ds in by_name.items()}
    assert lengths == {"元旦": 3, "春节": 9, "清明节": 3, "劳动节": 5, "端午节": 3, "中秋节": 3, "国庆节": 7}
    for ds in by_name.values():  # each period is consecutive days
        assert max(ds) - min(ds) == dt.timedelta(days=len(ds) - 1)
    workdays = sorted(day for day, kind, _ in days if kind == "workday")
    assert workdays == [
        D(2026, 1, 4),
        D(2026, 2, 14),
        D(2026, 2, 28),
        D(2026, 5, 9),
        D(2026, 9, 20),
        D(2026, 10, 10),
    ]
    assert all(day.weekday() >= 5 for day in workdays)


def test_working_days_around_the_holidays(cal: WorkingCalendar) -> None:
    assert not cal.is_workday(D(2026, 2, 16))  # Monday in the Spring Festival
    assert not cal.is_workday(D(2026, 2, 23))  # its last day, a Monday
    assert cal.is_workday(D(2026, 2, 24))
    assert cal.is_workday(D(2026, 2, 14))  # Saturday worked before it
    assert cal.is_workday(D(2026, 2, 28))  # and the Saturday after
    assert not cal.is_workday(D(2026, 1, 2))  # Friday after New Year's Day
    assert cal.is_workday(D(2026, 1, 4))  # Sunday worked
    assert not cal.is_workday(D(2026, 4, 6))  # Qingming Monday
    assert not cal.is_workday(D(2026, 5, 4)) and not cal.is_workday(D(2026, 5, 5))
    assert cal.is_workday(D(2026, 5, 9))
    assert not cal.is_workday(D(2026, 6, 19))  # Dragon Boat Friday
    assert not cal.is_workday(D(2026, 9, 25))  # Mid-Autumn Friday
    assert cal.is_workday(D(2026, 9, 20)) and cal.is_workday(D(2026, 10, 10))
    assert not any(cal.is_workday(D(2026, 10, d)) for d in range(1, 8))
    assert cal.is_workday(D(2026, 10, 8))
    assert not cal.is_workday(D(2026, 3, 7))  # an ordinary Saturday


def test_a_working_hours_deadline_skips_the_spring_festival(cal: WorkingCalendar) -> None:
    # Friday 13 Feb 17:00 plus 2 working hours: half an hour that day, then Saturday 14 Feb is a
    # make-up workday: 08:30 + 1.5 h.
    start = dt.datetime(2026, 2, 13, 17, 0, tzinfo=CHINA_STANDARD_TIME)
    assert cal.add_working_time(start, dt.timedelta(hours=2)) == dt.datetime(
        2026, 2, 14, 10, 0, tzinfo=CHINA_STANDARD_TIME
    )
    # Saturday 14 Feb 17:00 plus 1 hour: the 15th-23rd are off, so Tuesday 24 Feb 09:00.
    start = dt.datetime(2026, 2, 14, 17, 0, tzinfo=CHINA_STANDARD_TIME)
    assert cal.add_working_time(start, dt.timedelta(hours=1)) == dt.datetime(
        2026, 2, 24, 9, 0, tzinfo=CHINA_STANDARD_TIME
    )


def test_comment_lines_are_skipped() -> None:
    text = "# a note\n#another\ndate,kind,name\n# in between\n2026-01-01,holiday,元旦\n"
    assert parse_days(text) == [(D(2026, 1, 1), "holiday", "元旦")]


def test_errors_name_the_files_own_line_numbers_despite_comments() -> None:
    from govkit.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="line 4: date"):
        parse_days("# source: the State Council notice\ndate,kind,name\n# checked\n2026-13-01,holiday,x\n")
