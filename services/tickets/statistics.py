"""Cockpit figures, fast on millions of tickets.

Every ticket contributes a handful of counters (its state, on time, rated ...) and up to two
histogram buckets (time to acknowledge, time to resolve). A district's contributions are kept
summed per reporting month, category and lead unit (`month_stats`, `month_buckets`), updated
in the same transaction as the ticket. A question about a district then reads the whole months
of its period from those sums and only the partial months at its edges from the tickets
themselves; a street, community or block reads its own tickets through an index on its level.
Both paths count with the same `contribution()`, so they agree exactly.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Executable, Table, Text, bindparam, case, delete, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from gov.tickets.v1 import tickets_pb2 as pb
from govkit.auth.scopes import covers, validate_path
from govkit.db import Database, is_sqlite
from govkit.errors import PermissionDenied
from govkit.protobuf import period
from services.tickets import convert, facts
from services.tickets.access import Viewer
from services.tickets.calendar import CHINA_STANDARD_TIME
from services.tickets.catalogue import code_of
from services.tickets.models import Base, DistrictMonthBuckets, MonthBuckets, MonthStats, Ticket

STATES = [v.name.removeprefix("TICKET_STATE_").lower() for v in pb.TicketState.DESCRIPTOR.values if v.number]
FLAGS = ["on_time", "same_day", "rated", "satisfied", "mediated", "settled", "overdue"]
COUNTERS = ["total", *STATES, *FLAGS]
COMPLETED = ("resolved", "closed")
_KEY = ("district", "month", "category", "lead_unit")


@dataclass(frozen=True)
class Contribution:
    """What one ticket adds to its district's month."""

    key: tuple[str, str, str, str]  # district, month, category, lead unit
    counts: tuple[tuple[str, int], ...]
    buckets: tuple[tuple[str, int], ...] = field(default=())  # (acknowledge|resolve, bucket)


def month_of(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m")


def contribution(row: Ticket) -> Contribution:
    completed = row.state in COMPLETED
    counts = {"total": 1, row.state: 1}
    flags = {
        "on_time": completed and bool(row.on_time),
        "same_day": completed and bool(row.same_day),
        "rated": row.rating is not None,
        "satisfied": row.rating is not None and row.rating >= 4,
        "mediated": row.kind == "dispute" and completed and bool(row.mediation_outcome),
        "settled": row.kind == "dispute" and completed and row.mediation_outcome == "settled",
        "overdue": bool(row.acknowledge_overdue or row.resolve_overdue),
    }
    counts.update({name: 1 for name, on in flags.items() if on})
    buckets = []
    if row.acknowledge_bucket is not None:
        buckets.append(("acknowledge", row.acknowledge_bucket))
    if completed and row.resolve_bucket is not None:
        buckets.append(("resolve", row.resolve_bucket))
    return Contribution(
        key=(row.district, month_of(row.create_time), row.category, row.lead_unit or ""),
        counts=tuple(sorted(counts.items())),
        buckets=tuple(buckets),
    )


def month_row(part: Contribution) -> dict[str, object]:
    """What a new ticket's contribution adds to `month_stats`: its key columns and counter
    increments (it has no buckets yet: no acknowledge or resolve time)."""
    if part.buckets:
        raise ValueError("a contribution with buckets adds to more than month_stats: use record()")
    return {**dict(zip(_KEY, part.key, strict=True)), **dict(part.counts)}


def _table(model: type[Base]) -> Table:
    """A mapped class's table (the stubs type `__table__` as any FromClause)."""
    return cast(Table, model.__table__)


@functools.cache
def _upsert(
    dialect: str, model: type[Base], keys: tuple[str, ...], increments: tuple[str, ...]
) -> Executable:
    """Add the increments to the row of `keys`, creating it. Built once per shape (a report adds to
    the same two counters every time) with the values bound per call: building and compiling the
    statement anew cost more than running it."""
    table = _table(model)
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = make(table).values({c: bindparam(c) for c in (*keys, *increments)})
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + statement.excluded[c] for c in increments}
    )


async def record(
    executor: AsyncSession | AsyncConnection, before: Contribution | None, after: Contribution
) -> None:
    """Move a ticket's contribution from `before` to `after` in its district's month sums (in the
    session's transaction, or on the connection of one).

    Rows are updated table by table, each table's in ascending key order, never in the order the
    ticket's change happens to list them: a dispatch (no unit -> unit U) and a return (U -> no unit)
    racing on the same month would otherwise lock the same two rows in opposite orders and deadlock.
    """
    if before == after:
        return
    bind = executor.get_bind() if isinstance(executor, AsyncSession) else executor
    dialect = bind.dialect.name

    async def add(model: type[Base], keys: dict[str, object], increments: dict[str, int]) -> None:
        await executor.execute(
            _upsert(dialect, model, tuple(keys), tuple(increments)), {**keys, **increments}
        )

    counts: dict[tuple[str, str, str, str], Counter[str]] = {}
    buckets: dict[tuple[tuple[str, str, str, str], str, int], int] = Counter()
    for sign, part in ((-1, before), (1, after)):
        if part is None:
            continue
        counts.setdefault(part.key, Counter()).update({k: sign * v for k, v in part.counts})
        for kind, bucket in part.buckets:
            buckets[(part.key, kind, bucket)] += sign
    for key, delta in sorted(counts.items()):
        changes = {name: n for name, n in delta.items() if n}
        if changes:
            await add(MonthStats, dict(zip(_KEY, key, strict=True)), changes)
    district_buckets: Counter[tuple[str, str, str, int]] = Counter()
    for (key, kind, bucket), n in sorted(buckets.items()):
        if n:
            keys = {**dict(zip(_KEY, key, strict=True)), "kind": kind, "bucket": bucket}
            await add(MonthBuckets, keys, {"count": n})
            district_buckets[(key[0], key[1], kind, bucket)] += n
    for (district, month, kind, bucket), n in sorted(district_buckets.items()):
        if n:
            keys = {"district": district, "month": month, "kind": kind, "bucket": bucket}
            await add(DistrictMonthBuckets, keys, {"count": n})


async def relocate(session: AsyncSession, moved: ColumnElement[bool], district: str) -> int:
    """Tickets selected by `moved` now belong to `district` (a node moved): carry their month sums.

    Call it before their paths are rewritten. Levels below the district need nothing here: they
    are read from the tickets' own columns, which the move rewrites. Returns how many moved district.
    """
    counts: dict[tuple[str, str, str, str], Counter[str]] = {}
    buckets: Counter[tuple[tuple[str, str, str, str], str, int]] = Counter()
    seen = 0
    # Plain rows without the long texts, not ORM objects (several times faster); contribution()
    # reads them by column name.
    columns = [c for c in Ticket.__table__.c if not isinstance(c.type, Text)]
    result = await session.stream(
        select(*columns).where(moved, Ticket.district != district).execution_options(yield_per=5_000)
    )
    async for partition in result.partitions():
        for row in partition:
            # A Row of Ticket's columns, not a Ticket: contribution() only reads them by name.
            part = contribution(row)  # type: ignore[arg-type]
            counts.setdefault(part.key, Counter()).update(dict(part.counts))
            for kind, bucket in part.buckets:
                buckets[(part.key, kind, bucket)] += 1
            seen += 1

    def there(key: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
        return (district, *key[1:])

    stats_rows, bucket_rows = [], []
    district_buckets: Counter[tuple[str, str, str, int]] = Counter()
    for key, n in counts.items():
        for sign, at in ((-1, key), (1, there(key))):
            stats_rows.append(
                {**dict(zip(_KEY, at, strict=True)), **{c: sign * n.get(c, 0) for c in COUNTERS}}
            )
    for (key, kind, bucket), count in buckets.items():
        for sign, at in ((-1, key), (1, there(key))):
            bucket_rows.append(
                {**dict(zip(_KEY, at, strict=True)), "kind": kind, "bucket": bucket, "count": sign * count}
            )
            district_buckets[(at[0], at[1], kind, bucket)] += sign * count
    district_rows = [
        {"district": d, "month": m, "kind": kind, "bucket": bucket, "count": n}
        for (d, m, kind, bucket), n in district_buckets.items()
        if n
    ]
    # One statement per table for all rows (the keys are distinct within each list).
    for model, rows, increments in (
        (MonthStats, stats_rows, COUNTERS),
        (MonthBuckets, bucket_rows, ["count"]),
        (DistrictMonthBuckets, district_rows, ["count"]),
    ):
        if rows:
            table = _table(model)
            make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = make(table)
            statement = statement.on_conflict_do_update(
                index_elements=[c for c in rows[0] if c not in increments],
                set_={c: table.c[c] + statement.excluded[c] for c in increments},
            )
            await session.execute(statement, rows)
    return seen


async def rebuild(db: Database, batch: int = 20_000) -> int:
    """Recompute every district's month sums from the tickets (after a bulk load or a restore)."""
    counts: dict[tuple[str, str, str, str], Counter[str]] = {}
    buckets: Counter[tuple[tuple[str, str, str, str], str, int]] = Counter()
    seen = 0
    async with db.snapshot() as session:  # one moment for the whole pass (and a server-side cursor)
        result = await session.stream(select(Ticket).execution_options(yield_per=batch))
        async for row in result.scalars():
            part = contribution(row)
            counts.setdefault(part.key, Counter()).update(dict(part.counts))
            for kind, bucket in part.buckets:
                buckets[(part.key, kind, bucket)] += 1
            seen += 1
    district_buckets: Counter[tuple[str, str, str, int]] = Counter()
    for (key, kind, bucket), n in buckets.items():
        district_buckets[(key[0], key[1], kind, bucket)] += n
    async with db.transaction() as session:
        await session.execute(delete(DistrictMonthBuckets))
        await session.execute(delete(MonthBuckets))
        await session.execute(delete(MonthStats))
        stats_rows = [
            {**dict(zip(_KEY, key, strict=True)), **{c: n.get(c, 0) for c in COUNTERS}}
            for key, n in counts.items()
        ]
        bucket_rows = [
            {**dict(zip(_KEY, key, strict=True)), "kind": kind, "bucket": bucket, "count": n}
            for (key, kind, bucket), n in buckets.items()
        ]
        district_rows = [
            {"district": d, "month": m, "kind": kind, "bucket": bucket, "count": n}
            for (d, m, kind, bucket), n in district_buckets.items()
        ]
        for rows, model in (
            (stats_rows, MonthStats),
            (bucket_rows, MonthBuckets),
            (district_rows, DistrictMonthBuckets),
        ):
            for i in range(0, len(rows), batch):
                await session.execute(insert(model), rows[i : i + batch])
    # Fresh planner statistics for the new sums (SQLite otherwise walks a whole index for them).
    async with db.transaction() as session:
        tables = "" if is_sqlite(db.url) else " month_stats, month_buckets, district_month_buckets"
        await session.execute(text(f"ANALYZE{tables}"))
    return seen


# ---------------------------------------------------------------------------- answering


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _month_start(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(CHINA_STANDARD_TIME)
    return dt.datetime(local.year, local.month, 1, tzinfo=CHINA_STANDARD_TIME)


def _next_month(start: dt.datetime) -> dt.datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def split_period(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[tuple[str | None, str | None] | None, list[tuple[dt.datetime | None, dt.datetime | None]]]:
    """Whole months inside [start, end) as (first, after-last) month names, and the parts left over."""
    first = None if start is None else _month_start(start)
    if first is not None and start is not None and first < start:
        first = _next_month(first)
    last = None if end is None else _month_start(end)  # months before this one are whole
    if first is not None and last is not None and first >= last:
        return None, [(start, end)]
    edges: list[tuple[dt.datetime | None, dt.datetime | None]] = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    months = (first.strftime("%Y-%m") if first else None, last.strftime("%Y-%m") if last else None)
    return months, edges


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    acknowledge: Counter[int] = field(default_factory=Counter)
    resolve: Counter[int] = field(default_factory=Counter)

    def add_buckets(self, rows: Iterable[tuple[str, int, int]]) -> None:
        for kind, bucket, n in rows:
            (self.acknowledge if kind == "acknowledge" else self.resolve)[int(bucket)] += int(n)


class StatisticsFlows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def statistics(self, viewer: Viewer, r: pb.GetTicketStatisticsRequest) -> pb.TicketStatistics:
        node = validate_path(r.node, field="node", allow_global=False)
        unit = code_of(r.unit, "units", "unit") if r.unit else ""
        category = code_of(r.category, "categories", "category") if r.category else ""
        _authorize(viewer, node, unit)
        start, end = period(r)
        tally = Tally()
        # One moment for the month sums and the tickets around them (SET LOCAL needs a transaction too).
        async with self.db.snapshot() as session:
            if session.get_bind().dialect.name == "postgresql":
                # Plan each question for its own parameters: a cached generic plan guessed a
                # district's histogram at 3,500 rows instead of 330,000 and ran 2.6x slower.
                await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            if "/" not in node:  # a district: whole months from the sums
                months, edges = split_period(start, end)
                if months is not None:
                    await self._from_sums(session, tally, node, months, category, unit)
            else:
                edges = [(start, end)]
            for lo, hi in edges:
                await self._from_tickets(session, tally, node, lo, hi, category, unit)
        return _figures(tally)

    async def _from_sums(
        self,
        session: AsyncSession,
        tally: Tally,
        district: str,
        months: tuple[str | None, str | None],
        category: str,
        unit: str,
    ) -> None:
        # model: one of the month tables. Any, because DistrictMonthBuckets has no category or
        # lead_unit column, and those are only asked of the tables that have them.
        def where(model: Any) -> list[ColumnElement[bool]]:
            conditions = [model.district == district]
            if months[0]:
                conditions.append(model.month >= months[0])
            if months[1]:
                conditions.append(model.month < months[1])
            if category:
                conditions.append(model.category == category)
            if unit:
                conditions.append(model.lead_unit == unit)
            return conditions

        sums = (
            await session.execute(
                select(*(func.coalesce(func.sum(getattr(MonthStats, c)), 0) for c in COUNTERS)).where(
                    *where(MonthStats)
                )
            )
        ).one()
        tally.counts.update({c: int(v) for c, v in zip(COUNTERS, sums, strict=True)})
        histograms = MonthBuckets if category or unit else DistrictMonthBuckets
        tally.add_buckets(
            await session.execute(
                select(histograms.kind, histograms.bucket, func.sum(histograms.count))
                .where(*where(histograms))
                .group_by(histograms.kind, histograms.bucket)
            )
        )

    async def _from_tickets(
        self,
        session: AsyncSession,
        tally: Tally,
        node: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        category: str,
        unit: str,
    ) -> None:
        # Equality on the node's own level uses its index; blocks are the tree's leaves (the blocks
        # service fixes district/street/community/block by depth), so a block is its `node`.
        depth = node.count("/") + 1
        level = {1: Ticket.district, 2: Ticket.street, 3: Ticket.community}.get(depth, Ticket.node)
        filters: list[ColumnElement[bool]] = [level == node]
        if start is not None:
            filters.append(Ticket.create_time >= start)
        if end is not None:
            filters.append(Ticket.create_time < end)
        if category:
            filters.append(Ticket.category == category)
        if unit:
            filters.append(Ticket.lead_unit == unit)
        completed = Ticket.state.in_(COMPLETED)
        dispute_done = (Ticket.kind == "dispute") & completed
        columns = {
            "total": func.count(),
            **{s: _count(Ticket.state == s) for s in STATES},
            "on_time": _count(completed & Ticket.on_time.is_(True)),
            "same_day": _count(completed & Ticket.same_day.is_(True)),
            "rated": _count(Ticket.rating.is_not(None)),
            "satisfied": _count(Ticket.rating >= 4),
            "mediated": _count(dispute_done & (Ticket.mediation_outcome != "")),
            "settled": _count(dispute_done & (Ticket.mediation_outcome == "settled")),
            "overdue": _count(or_(Ticket.acknowledge_overdue.is_(True), Ticket.resolve_overdue.is_(True))),
        }
        values = (await session.execute(select(*columns.values()).where(*filters))).one()
        tally.counts.update({c: int(v) for c, v in zip(columns, values, strict=True)})
        ack = await session.execute(
            select(Ticket.acknowledge_bucket, func.count())
            .where(*filters, Ticket.acknowledge_bucket.is_not(None))
            .group_by(Ticket.acknowledge_bucket)
        )
        tally.add_buckets(("acknowledge", b, n) for b, n in ack if b is not None)  # None: filtered above
        res = await session.execute(
            select(Ticket.resolve_bucket, func.count())
            .where(*filters, Ticket.resolve_bucket.is_not(None), completed)
            .group_by(Ticket.resolve_bucket)
        )
        tally.add_buckets(("resolve", b, n) for b, n in res if b is not None)  # None: filtered above


def _figures(tally: Tally) -> pb.TicketStatistics:
    c = tally.counts
    done = c["resolved"] + c["closed"]
    actionable = c["total"] - c["rejected"] - c["merged"]
    out = pb.TicketStatistics(
        total=c["total"],
        by_state=[pb.StateCount(state=convert.value_of(pb.TicketState, s), count=c[s]) for s in STATES],
        completed=done,
        completion_rate=_rate(done, actionable),
        completed_on_time=c["on_time"],
        on_time_rate=_rate(c["on_time"], done),
        completed_same_day=c["same_day"],
        same_day_rate=_rate(c["same_day"], done),
        rated=c["rated"],
        satisfied=c["satisfied"],
        satisfaction_rate=_rate(c["satisfied"], c["rated"]),
        disputes_mediated=c["mediated"],
        disputes_settled=c["settled"],
        mediation_success_rate=_rate(c["settled"], c["mediated"]),
        overdue=c["overdue"],
    )
    for name, counts, q in (
        ("median_time_to_acknowledge", tally.acknowledge, 0.5),
        ("p90_time_to_acknowledge", tally.acknowledge, 0.9),
        ("median_time_to_resolve", tally.resolve, 0.5),
        ("p90_time_to_resolve", tally.resolve, 0.9),
    ):
        seconds = facts.quantile(counts.items(), q)
        if seconds is not None:
            getattr(out, name).CopyFrom(convert.duration(round(seconds)))
    return out


def _authorize(viewer: Viewer, node: str, unit: str) -> None:
    if any(covers(scope, node) for scope in viewer.scopes):
        return
    if unit and unit in viewer.units:
        return
    raise PermissionDenied(f"the figures of {node} are outside the caller's scope")
