"""The working calendar and SLA clock arithmetic.

China's offices work Monday to Friday, except on public holidays, and also on the make-up
workdays (调休) that the State Council sets on some weekends around long holidays. The list of
both changes every year, so it is data ops load per year, not code:

    date,kind,name
    2025-01-28,holiday,春节
    2025-01-26,workday,春节调休

Working hours are local (China Standard Time, UTC+8, no daylight saving) and may be split by a
lunch break. "Resolve within 16 working hours" then runs only inside those periods.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from govkit.errors import InvalidArgument

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
# Government offices: 8:30-12:00 and 14:00-17:30.
DEFAULT_PERIODS = ((dt.time(8, 30), dt.time(12, 0)), (dt.time(14, 0), dt.time(17, 30)))
# Far enough to cover any SLA; a longer search means the calendar has no working time at all.
_MAX_DAYS_SEARCHED = 3660


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up workdays on weekends
    periods: tuple[tuple[dt.time, dt.time], ...] = DEFAULT_PERIODS
    tz: dt.tzinfo = CHINA_STANDARD_TIME
    names: dict[dt.date, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            raise InvalidArgument(f"{min(both)} is both a holiday and a make-up workday", field="calendar")
        previous_end = dt.time.min
        for start, end in self.periods:
            if not previous_end <= start < end:
                raise InvalidArgument("working periods must be ordered and not overlap", field="periods")
            previous_end = end

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def _periods_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_workday(day):
            return []
        return [
            (dt.datetime.combine(day, start, self.tz), dt.datetime.combine(day, end, self.tz))
            for start, end in self.periods
        ]

    def add_working_time(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The moment `amount` of working time after `start` has been used up."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if amount < dt.timedelta(0):
            raise ValueError("amount must not be negative")
        remaining = amount
        local = start.astimezone(self.tz)
        day = local.date()
        for _ in range(_MAX_DAYS_SEARCHED):
            for begin, end in self._periods_on(day):
                if end <= local:
                    continue
                begin = max(begin, local)
                if remaining <= end - begin:
                    # Landing exactly at the end of a period counts as done then, not the next morning.
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= end - begin
            day += dt.timedelta(days=1)
        raise InvalidArgument("the calendar has no working time in the next ten years", field="calendar")

    def working_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time inside [start, end); negative if end is before start."""
        if end < start:
            return -self.working_time_between(end, start)
        total = dt.timedelta(0)
        a, b = start.astimezone(self.tz), end.astimezone(self.tz)
        day = a.date()
        while day <= b.date():
            for begin, finish in self._periods_on(day):
                overlap = min(finish, b) - max(begin, a)
                if overlap > dt.timedelta(0):
                    total += overlap
            day += dt.timedelta(days=1)
        return total

    def with_days(self, rows: Iterable[tuple[dt.date, str, str]]) -> WorkingCalendar:
        """A copy with more holidays / make-up workdays, e.g. another year's list."""
        holidays, workdays, names = set(self.holidays), set(self.workdays), dict(self.names)
        for day, kind, name in rows:
            (holidays if kind == "holiday" else workdays).add(day)
            (workdays if kind == "holiday" else holidays).discard(day)
            if name:
                names[day] = name
        return WorkingCalendar(frozenset(holidays), frozenset(workdays), self.periods, self.tz, names)


def parse_days(text: str) -> list[tuple[dt.date, str, str]]:
    """Read a `date,kind,name` CSV (kind: holiday or workday; `#` starts a comment line).

    Every bad line is reported.
    """
    # `#` lines are comments (where the list came from, who checked it); blanked, not removed,
    # so reported line numbers stay those of the file.
    lines = ["" if line.lstrip().startswith("#") else line for line in text.lstrip("\ufeff").splitlines()]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header: list[str] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [h.strip().lower() for h in row]
            break
    if header[:2] != ["date", "kind"]:
        raise InvalidArgument(
            f"line {reader.line_num}: the header must start with date,kind", field="calendar"
        )
    rows, errors = [], []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            day = dt.date.fromisoformat(row[0].strip())
        except (ValueError, IndexError):
            errors.append(f"line {line}: date must be YYYY-MM-DD")
            continue
        kind = row[1].strip().lower() if len(row) > 1 else ""
        if kind not in ("holiday", "workday"):
            errors.append(f"line {line}: kind must be holiday or workday")
            continue
        if kind == "workday" and day.weekday() < 5:
            errors.append(f"line {line}: {day} is a weekday already; a make-up workday falls on a weekend")
            continue
        rows.append((day, kind, row[2].strip() if len(row) > 2 else ""))
    if errors:
        raise InvalidArgument("; ".join(errors[:20]), field="calendar")
    return rows


def deadline(
    start: dt.datetime, target: dt.timedelta, *, working_hours: bool, calendar: WorkingCalendar
) -> dt.datetime:
    """When an SLA target set at `start` falls due, in working or in calendar time."""
    return calendar.add_working_time(start, target) if working_hours else start + target
