"""The statements that write a report: what reports.py decided, as few round trips as it can be.

PostgreSQL: one statement in autocommit, which is its own transaction. Its CTEs claim the request
id with the answer, insert the ticket only if the claim took (or there is no request id), and from
the inserted ticket its first timeline entry, its event (outbox) and its month sums: all of it
commits at once or not at all, with no BEGIN or COMMIT round trips.

SQLite (no data-modifying CTEs, and a local database): the same rows, a statement each, in one
write transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    Executable,
    Insert,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import BindParameter

from govkit.hotreads import HotRead
from services.tickets.flows import FINAL_FOR_DUPLICATES
from services.tickets.models import MonthStats, Ticket, TimelineEntry, Unit, platform

TICKETS = cast(Table, Ticket.__table__)
ENTRIES = cast(Table, TimelineEntry.__table__)
SUMS = cast(Table, MonthStats.__table__)
ENTRY_COLUMNS = tuple(c.key for c in ENTRIES.c if c.key != "seq")  # the database numbers entries
OUTBOX_COLUMNS = tuple(c.key for c in platform.outbox.c if c.key not in ("seq", "published_at"))
CANDIDATE, SUGGESTED = 0, 1  # the kinds of `candidates` rows

# Executed with one row's values each (SQLite): the statement's columns are the values' keys.
INSERT_TICKET = insert(TICKETS)
INSERT_ENTRY = insert(ENTRIES)
INSERT_OUTBOX = insert(platform.outbox)


@functools.cache
def candidates(by_household: bool, by_point: bool, by_center: bool) -> HotRead | None:
    """One read for two questions: open tickets of the category reported lately in the household or
    in the box around the point (the caller keeps those within the radius), and the street's first
    unit of the category's center kind, the suggested unit. Rows are (kind, id, lat, lng, household,
    create time), kind CANDIDATE or SUGGESTED, in no promised order. Built once per shape, values
    bound per call; None when neither question is asked."""
    parts = []
    if by_household or by_point:
        near = []
        if by_household:
            near.append(Ticket.household_id == bindparam("household"))
        if by_point:
            near.append(
                Ticket.latitude.between(bindparam("lat_lo"), bindparam("lat_hi"))
                & Ticket.longitude.between(bindparam("lng_lo"), bindparam("lng_hi"))
            )
        recent = (
            select(Ticket.id, Ticket.latitude, Ticket.longitude, Ticket.household_id, Ticket.create_time)
            .where(
                Ticket.category == bindparam("category"),
                Ticket.create_time >= bindparam("since"),
                # The code's own constants, written into the statement (a list bound at each run
                # could not be planned once: govkit.hotreads).
                Ticket.state.not_in([literal_column(f"'{state}'") for state in FINAL_FOR_DUPLICATES]),
                or_(*near),
            )
            .order_by(Ticket.create_time.desc())
            .limit(20)
            .subquery()
        )
        parts.append(select(literal_column(str(CANDIDATE)).label("kind"), *recent.c))
    if by_center:
        first = (
            select(Unit.code)
            .where(Unit.kind == bindparam("center"), Unit.node == bindparam("street"))
            .order_by(Unit.code)
            .limit(1)
            .subquery()
        )
        parts.append(
            select(literal_column(str(SUGGESTED)).label("kind"), first.c.code, null(), null(), null(), null())
        )
    if not parts:
        return None
    return HotRead(parts[0] if len(parts) == 1 else union_all(*parts))


@functools.cache
def write_once(claim: Insert | None, counters: tuple[str, ...]) -> Executable:
    """PostgreSQL: the whole report in one statement (see the module's doc), returning how many
    tickets it inserted: 0 when the request id was taken by an earlier call. `claim` is the
    request id's (IdempotencyKeys.claim_finished_statement, bound by its finished_row), None
    without one. Bound with t_<column> for the ticket, e_ the timeline entry, o_ the outbox row and
    s_ the month sums. Built once per shape."""
    rows = select(*_binds(TICKETS, [c.key for c in TICKETS.c], "t_"))
    if claim is not None:
        taken = claim.cte("claim")
        rows = rows.where(exists(select(taken.c.request_id)))
    ticket = (
        insert(TICKETS).from_select([c.key for c in TICKETS.c], rows).returning(TICKETS.c.id).cte("ticket")
    )
    entry_columns = [c for c in ENTRY_COLUMNS if c != "ticket_id"]
    entry = (
        insert(ENTRIES)
        .from_select(
            ["ticket_id", *entry_columns], select(ticket.c.id, *_binds(ENTRIES, entry_columns, "e_"))
        )
        .cte("entry")
    )
    event = (
        insert(platform.outbox)
        .from_select(
            OUTBOX_COLUMNS, select(*_binds(platform.outbox, OUTBOX_COLUMNS, "o_")).select_from(ticket)
        )
        .cte("event")
    )
    keys = [c.key for c in SUMS.primary_key]
    added = pg_insert(SUMS).from_select(
        [*keys, *counters], select(*_binds(SUMS, [*keys, *counters], "s_")).select_from(ticket)
    )
    sums = added.on_conflict_do_update(
        index_elements=keys, set_={c: SUMS.c[c] + added.excluded[c] for c in counters}
    ).cte("sums")
    return select(func.count()).select_from(ticket).add_cte(entry, event, sums)


def _binds(table: Table, columns: Sequence[str], prefix: str) -> list[BindParameter[Any]]:
    return [bindparam(prefix + c, type_=table.c[c].type) for c in columns]
