"""Quiet hours (pure): when a message held by a person's quiet window may go out.

A window is a start and an end wall-clock time in a time zone; an end before the start wraps past
midnight (22:00-07:00). Urgent messages (overdue, escalation, safety) are never held. The clock is
an argument, so tests choose the moment instead of waiting for it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from govkit.errors import InvalidArgument

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
DEFAULT_START = "22:00"
DEFAULT_END = "07:00"
DEFAULT_ZONE = "Asia/Shanghai"


def parse_clock(value: str, field: str) -> dt.time:
    """`HH:MM` or `HH:MM:SS` (24-hour)."""
    m = _CLOCK.match(value)
    if m is None:
        raise InvalidArgument("must be HH:MM or HH:MM:SS (24-hour)", field=field)
    return dt.time(int(m[1]), int(m[2]), int(m[3] or 0))


def parse_zone(value: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("is not an IANA time zone (e.g. Asia/Shanghai)", field=field) from None


@dataclass(frozen=True)
class QuietWindow:
    start: dt.time
    end: dt.time
    zone: ZoneInfo

    @classmethod
    def of(cls, start: str, end: str, zone: str) -> QuietWindow:
        return cls(parse_clock(start, "start"), parse_clock(end, "end"), parse_zone(zone, "time_zone"))

    def release(self, now: dt.datetime, *, urgent: bool) -> dt.datetime:
        """When a message arriving at `now` (aware, any zone) may be sent: `now` unless it is held."""
        if urgent or self.start == self.end:
            return now
        local = now.astimezone(self.zone)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= t < self.end
            end_day = local.date()
        else:  # wraps past midnight
            inside = t >= self.start or t < self.end
            end_day = local.date() + dt.timedelta(days=1) if t >= self.start else local.date()
        if not inside:
            return now
        end = dt.datetime.combine(end_day, self.end, tzinfo=self.zone)
        return end.astimezone(dt.UTC)


def next_digest(now: dt.datetime, frequency: str, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """When the digest that an item arriving at `now` belongs to goes out (UTC): the next top of
    the hour, or the next `at` in `zone` (strictly after `now`)."""
    if frequency == "hourly":
        top = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        return top + dt.timedelta(hours=1)
    local = now.astimezone(zone)
    due = dt.datetime.combine(local.date(), at, tzinfo=zone)
    if due <= local:
        due = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=zone)
    return due.astimezone(dt.UTC)
