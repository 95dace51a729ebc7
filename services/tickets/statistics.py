"""Cockpit figures: one aggregate scan and two small histograms, whatever the number of tickets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from gov.tickets.v1 import tickets_pb2 as pb
from govkit.auth.scopes import covers, validate_path
from govkit.db import Database
from govkit.errors import InvalidArgument, PermissionDenied
from govkit.sqlpaths import within
from services.tickets import convert, facts
from services.tickets.access import Viewer
from services.tickets.catalogue import code_of
from services.tickets.models import Ticket, TicketUnit

STATES = [v.name.removeprefix("TICKET_STATE_").lower() for v in pb.TicketState.DESCRIPTOR.values if v.number]


def _count(condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class StatisticsFlows:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def statistics(self, viewer: Viewer, r: pb.GetTicketStatisticsRequest) -> pb.TicketStatistics:
        node = validate_path(r.node, field="node", allow_global=False)
        unit = code_of(r.unit, "units", "unit") if r.unit else ""
        category = code_of(r.category, "categories", "category") if r.category else ""
        _authorize(viewer, node, unit)
        filters: list[ColumnElement[bool]] = [within(Ticket.node, node)]
        if unit:
            filters.append(Ticket.id.in_(select(TicketUnit.ticket_id).where(TicketUnit.unit == unit)))
        if category:
            filters.append(Ticket.category == category)
        if r.HasField("start_time"):
            filters.append(Ticket.create_time >= r.start_time.ToDatetime(tzinfo=dt.UTC))
        if r.HasField("end_time"):
            end = r.end_time.ToDatetime(tzinfo=dt.UTC)
            if r.HasField("start_time") and end <= r.start_time.ToDatetime(tzinfo=dt.UTC):
                raise InvalidArgument("must be after start_time", field="end_time")
            filters.append(Ticket.create_time < end)
        states = STATES
        completed = Ticket.state.in_(("resolved", "closed"))
        aggregate = select(
            func.count(),
            *(_count(Ticket.state == s) for s in states),
            _count(completed & Ticket.on_time.is_(True)),
            _count(completed & Ticket.same_day.is_(True)),
            _count(Ticket.rating.is_not(None)),
            _count(Ticket.rating >= 4),
            _count((Ticket.kind == "dispute") & completed & (Ticket.mediation_outcome != "")),
            _count((Ticket.kind == "dispute") & completed & (Ticket.mediation_outcome == "settled")),
            _count(or_(Ticket.acknowledge_overdue.is_(True), Ticket.resolve_overdue.is_(True))),
        ).where(*filters)
        async with self.db.sessions() as session:
            values = [int(v) for v in (await session.execute(aggregate)).one()]
            ack = await session.execute(
                select(Ticket.acknowledge_bucket, func.count())
                .where(*filters, Ticket.acknowledge_bucket.is_not(None))
                .group_by(Ticket.acknowledge_bucket)
            )
            ack_counts = [(int(b), int(c)) for b, c in ack]
            res = await session.execute(
                select(Ticket.resolve_bucket, func.count())
                .where(*filters, Ticket.resolve_bucket.is_not(None), completed)
                .group_by(Ticket.resolve_bucket)
            )
            res_counts = [(int(b), int(c)) for b, c in res]
        total = values[0]
        by_state = dict(zip(states, values[1 : 1 + len(states)], strict=True))
        on_time, same_day, rated, satisfied, mediated, settled, overdue = values[1 + len(states) :]
        done = by_state["resolved"] + by_state["closed"]
        actionable = total - by_state["rejected"] - by_state["merged"]
        out = pb.TicketStatistics(
            total=total,
            by_state=[
                pb.StateCount(state=convert.value_of(pb.TicketState, s), count=c) for s, c in by_state.items()
            ],
            completed=done,
            completion_rate=_rate(done, actionable),
            completed_on_time=on_time,
            on_time_rate=_rate(on_time, done),
            completed_same_day=same_day,
            same_day_rate=_rate(same_day, done),
            rated=rated,
            satisfied=satisfied,
            satisfaction_rate=_rate(satisfied, rated),
            disputes_mediated=mediated,
            disputes_settled=settled,
            mediation_success_rate=_rate(settled, mediated),
            overdue=overdue,
        )
        for field, counts, q in (
            ("median_time_to_acknowledge", ack_counts, 0.5),
            ("p90_time_to_acknowledge", ack_counts, 0.9),
            ("median_time_to_resolve", res_counts, 0.5),
            ("p90_time_to_resolve", res_counts, 0.9),
        ):
            seconds = facts.quantile(counts, q)
            if seconds is not None:
                getattr(out, field).CopyFrom(convert.duration(round(seconds)))
        return out


def _authorize(viewer: Viewer, node: str, unit: str) -> None:
    if any(covers(scope, node) for scope in viewer.scopes):
        return
    if unit and unit in viewer.units:
        return
    raise PermissionDenied(f"the figures of {node} are outside the caller's scope")
