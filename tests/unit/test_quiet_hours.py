"""Quiet hours as a pure function of the moment: held until the window's end, urgent never held."""

from __future__ import annotations

import datetime as dt

import pytest

from govkit.errors import InvalidArgument
from services.notifications.quiet import QuietWindow, next_digest

CST = dt.timezone(dt.timedelta(hours=8))
DEFAULT = QuietWindow.of("22:00", "07:00", "Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=CST)


def test_a_message_at_night_is_held_until_seven_in_the_morning() -> None:
    assert DEFAULT.release(at(3, 23, 30), urgent=False) == at(4, 7).astimezone(dt.UTC)
    assert DEFAULT.release(at(4, 2, 15), urgent=False) == at(4, 7).astimezone(dt.UTC)
    assert DEFAULT.release(at(4, 22, 0), urgent=False) == at(5, 7).astimezone(dt.UTC)


def test_outside_the_window_and_urgent_messages_go_at_once() -> None:
    for moment in (at(4, 7, 0), at(4, 12, 0), at(4, 21, 59)):
        assert DEFAULT.release(moment, urgent=False) == moment
    assert DEFAULT.release(at(4, 23, 0), urgent=True) == at(4, 23, 0)


def test_a_window_within_one_day_and_an_empty_one() -> None:
    nap = QuietWindow.of("12:00", "14:30:15", "Asia/Shanghai")
    assert nap.release(at(4, 13), urgent=False) == dt.datetime(2026, 11, 4, 14, 30, 15, tzinfo=CST)
    assert nap.release(at(4, 15), urgent=False) == at(4, 15)
    never = QuietWindow.of("08:00", "08:00", "UTC")
    assert never.release(at(4, 3), urgent=False) == at(4, 3)


def test_the_clock_is_read_in_the_window_s_zone() -> None:
    # 23:30 UTC is 07:30 in Shanghai: outside its 22:00-07:00 window.
    moment = dt.datetime(2026, 11, 3, 23, 30, tzinfo=dt.UTC)
    assert DEFAULT.release(moment, urgent=False) == moment
    assert QuietWindow.of("22:00", "07:00", "UTC").release(moment, urgent=False) == dt.datetime(
        2026, 11, 4, 7, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [("25:00", "07:00", "UTC"), ("22:00", "7", "UTC"), ("22:00", "07:00", "Mars/Base")],
)
def test_bad_windows_are_refused(start: str, end: str, zone: str) -> None:
    with pytest.raises(InvalidArgument):
        QuietWindow.of(start, end, zone)


def test_digest_times_are_the_next_top_of_the_hour_or_the_next_daily_time() -> None:
    zone = DEFAULT.zone
    assert next_digest(at(4, 9, 59), "hourly", dt.time(), zone) == at(4, 10).astimezone(dt.UTC)
    assert next_digest(at(4, 10, 0), "hourly", dt.time(), zone) == at(4, 11).astimezone(dt.UTC)
    half_past_eight = dt.time(8, 30)
    assert next_digest(at(4, 7, 0), "daily", half_past_eight, zone) == at(4, 8, 30).astimezone(dt.UTC)
    assert next_digest(at(4, 8, 30), "daily", half_past_eight, zone) == at(5, 8, 30).astimezone(dt.UTC)
    assert next_digest(at(4, 23, 0), "daily", half_past_eight, zone) == at(5, 8, 30).astimezone(dt.UTC)
