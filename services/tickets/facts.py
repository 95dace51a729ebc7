"""What the cockpit aggregates, derived from a ticket whenever it changes.

Durations are kept as log-scale buckets (5% wide), so a median or p90 over any number of
tickets is a GROUP BY over a few hundred buckets instead of a sort of every duration.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from services.tickets.calendar import CHINA_STANDARD_TIME
from services.tickets.models import Ticket

GROWTH = 1.05
_LOG_GROWTH = math.log(GROWTH)


def bucket(seconds: float) -> int:
    """0 for under a second; bucket b >= 1 holds [GROWTH**(b-1), GROWTH**b) seconds."""
    if seconds < 1:
        return 0
    return int(math.log(seconds) / _LOG_GROWTH) + 1


def bucket_value(b: int) -> float:
    """A bucket's representative duration (its geometric middle): within 2.5% of any member."""
    return 0.0 if b <= 0 else GROWTH ** (b - 0.5)


def quantile(counts: Iterable[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (0..1) of durations given as (bucket, count) pairs; None when empty."""
    ordered = sorted((b, c) for b, c in counts if c > 0)
    total = sum(c for _, c in ordered)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))  # nearest-rank definition
    seen = 0
    for b, c in ordered:
        seen += c
        if seen >= rank:
            return bucket_value(b)
    return bucket_value(ordered[-1][0])


def refresh(row: Ticket) -> None:
    """Recompute the aggregated columns of a ticket from its times."""
    created = row.create_time
    row.acknowledge_bucket = (
        bucket((row.acknowledge_time - created).total_seconds()) if row.acknowledge_time else None
    )
    if row.resolve_time is None:
        row.resolve_bucket = row.on_time = row.same_day = None
        return
    row.resolve_bucket = bucket((row.resolve_time - created).total_seconds())
    row.on_time = row.resolve_time <= row.resolve_deadline
    row.same_day = _local_day(row.resolve_time) == _local_day(created)


def _local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CHINA_STANDARD_TIME).date()
