"""Tickets' use cases: read, list, move through the lifecycle, read the timeline (reporting is in
reports.py), and the ticket helpers the sweeper shares.

Each mutating use case is one transaction holding the ticket row, its timeline entry and its
event (transactional outbox), so a crash keeps all three or none.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import json
import re
from collections import namedtuple
from collections.abc import Sequence
from typing import cast

from sqlalchemy import bindparam, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import keyset, pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.scopes import validate_path
from govkit.crashpoint import crashpoint
from govkit.db import Database, get_row, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.hotreads import HotRead, split_joined
from govkit.protobuf import optional_time, period
from govkit.sqlpaths import within
from services.tickets import convert, facts, lifecycle, statistics
from services.tickets.access import Viewer
from services.tickets.calendar import WorkingCalendar, deadline
from services.tickets.catalogue import CalendarStore, CatalogueFlows, code_of, emit, units_of_caller
from services.tickets.lifecycle import Action, State, UnitStatus
from services.tickets.models import Category, Ticket, TicketUnit, TimelineEntry, Unit

# The actions whose _apply rewrites a ticket's unit rows; the others leave them as loaded (under the
# ticket's row lock), so the rows are not read again.
_REWRITES_UNITS = frozenset(
    {
        Action.DISPATCH,
        Action.ACKNOWLEDGE,
        Action.RETURN,
        Action.ESCALATE,
        Action.ACCEPT_ESCALATION,
        Action.REOPEN,
    }
)

# What each action announces: tickets.v1.ticket.<name>.
EVENT_NAMES = {
    Action.ACCEPT: "accepted",
    Action.REJECT: "rejected",
    Action.MERGE: "merged",
    Action.ESCALATE: "escalated",
    Action.ACCEPT_ESCALATION: "escalation_accepted",
    Action.DISPATCH: "dispatched",
    Action.ACKNOWLEDGE: "acknowledged",
    Action.RETURN: "returned",
    Action.START: "started",
    Action.RESOLVE: "resolved",
    Action.RATE: "rated",
    Action.CLOSE: "closed",
    Action.REOPEN: "reopened",
}
OPEN_STATES = ("submitted", "accepted", "escalated", "dispatched", "in_progress")
FINAL_FOR_DUPLICATES = ("rejected", "merged")
_URI = re.compile(r"^https?://[^\s]{1,490}$")
MAX_MEDIA = 10


@dataclasses.dataclass(frozen=True)
class Settings:
    reopen_window: dt.timedelta = dt.timedelta(days=7)
    duplicate_radius_m: float = 150.0
    duplicate_window: dt.timedelta = dt.timedelta(hours=72)


def media_links(uris: Sequence[str], field: str) -> list[str]:
    if len(uris) > MAX_MEDIA:
        raise InvalidArgument(f"at most {MAX_MEDIA} links", field=field)
    for i, uri in enumerate(uris):
        if not _URI.match(uri):
            raise InvalidArgument("must be an http(s) URL of at most 500 characters", field=f"{field}[{i}]")
    return list(uris)


def deadlines(
    category: Category, start: dt.datetime, calendar: WorkingCalendar
) -> tuple[dt.datetime, dt.datetime]:
    working = category.sla_clock == "working_hours"
    return (
        deadline(
            start,
            dt.timedelta(seconds=category.acknowledge_seconds),
            working_hours=working,
            calendar=calendar,
        ),
        deadline(
            start, dt.timedelta(seconds=category.resolve_seconds), working_hours=working, calendar=calendar
        ),
    )


def domain_ticket(row: Ticket, units: Sequence[TicketUnit]) -> lifecycle.Ticket:
    return lifecycle.Ticket(
        id=row.id,
        state=State(row.state),
        node=row.node,
        street=row.street,
        district=row.district,
        reporter=row.reporter,
        escalated=row.escalated,
        units={u.unit: UnitStatus(u.status) for u in units},
        lead_unit=row.lead_unit,
        rating=row.rating,
        resolved_at=row.resolve_time,
    )


# The read paths (GetTicket, ListTickets) run Core statements on a connection: no session,
# identity map or instance loading, which cost more of the service's CPU than the round trips
# (bench/README.md, ceiling). The rows carry the mapped classes' attribute names, all that the
# converters and Viewer read; they are read-only and never reach a write.
_tickets = Ticket.__table__.c
_units = TicketUnit.__table__.c
# A ticket and its units in one statement: a row per unit (one with the unit columns null when it has
# none), each repeating the ticket.
_TICKET_WIDTH = len(_tickets)
_TICKET_WITH_UNITS = HotRead(
    select(*_tickets, *(c.label(f"unit_{c.name}") for c in _units))
    .select_from(Ticket.__table__.outerjoin(TicketUnit.__table__, _units.ticket_id == _tickets.id))
    .where(_tickets.id == bindparam("id"))
)
_TicketRow = namedtuple("_TicketRow", [c.name for c in _tickets])  # type: ignore[misc]  # names from the table
_UnitRow = namedtuple("_UnitRow", [c.name for c in _units])  # type: ignore[misc]  # same


async def load_units(session: AsyncSession, ticket_id: str) -> list[TicketUnit]:
    return list(
        (await session.execute(select(TicketUnit).where(TicketUnit.ticket_id == ticket_id))).scalars()
    )


def entry_values(
    ticket_id: str,
    action: str,
    actor: str,
    time: dt.datetime,
    from_state: str,
    to_state: str,
    note: str = "",
    unit: str = "",
    details: dict[str, str] | None = None,
) -> dict[str, object]:
    """A timeline entry's columns (but its sequence number, which the database gives)."""
    return {
        "ticket_id": ticket_id,
        "action": action,
        "actor": actor,
        "time": time,
        "from_state": from_state,
        "to_state": to_state,
        "note": note,
        "unit": unit,
        "details": json.dumps(details or {}, ensure_ascii=False),
    }


async def append_entry(session: AsyncSession, values: dict[str, object]) -> TimelineEntry:
    """Add the entry of `entry_values` to the session's transaction."""
    entry = TimelineEntry(**values)
    session.add(entry)
    await session.flush()
    return entry


async def announce(
    session: AsyncSession, actor: str, row: Ticket, units: Sequence[TicketUnit], entry: TimelineEntry
) -> None:
    await emit(
        session,
        actor,
        f"tickets.v1.ticket.{EVENT_NAMES[Action(entry.action)]}",
        events_pb2.TicketTransitioned(
            ticket=convert.ticket_summary(row, units), entry=convert.entry_summary(entry)
        ),
        f"tickets/{row.id}",
    )


class TicketFlows:
    def __init__(
        self,
        db: Database,
        catalogue: CatalogueFlows,
        calendar: CalendarStore,
        settings: Settings | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.calendar = calendar
        self.settings = settings or Settings()

    async def viewer(self, principal: Principal) -> Viewer:
        return Viewer(principal, await self.catalogue.units_of(principal))

    # ------------------------------------------------------------------ reading

    async def get(self, principal: Principal, name: str) -> tuple[Ticket, list[TicketUnit]]:
        """The ticket and its units as read-only rows (see _TICKET_WITH_UNITS), if the caller may see it.

        The caller's units are read live, on the same connection, only when the ticket is neither
        theirs nor within a scope of their token: they could not change the answer otherwise."""
        ticket_id = validation.resource_id(name, "tickets")
        async with self.db.hot_reads() as reads:
            found, unit_rows = split_joined(
                await reads.all(_TICKET_WITH_UNITS, id=ticket_id), _TICKET_WIDTH, _TicketRow, _UnitRow
            )
            if found is None:
                raise NotFound(f"no ticket tickets/{ticket_id}")
            row, units = cast(Ticket, found), cast(list[TicketUnit], unit_rows)
            codes = [u.unit for u in units]
            if not Viewer(principal, {}).can_see(row, codes):
                staffed = await units_of_caller(reads, principal)
                if not Viewer(principal, staffed).can_see(row, codes):
                    raise PermissionDenied("the ticket is outside the caller's scope")
        return row, units

    async def list(
        self, principal: Principal, r: pb.ListTicketsRequest
    ) -> tuple[list[tuple[Ticket, list[TicketUnit]]], str]:
        size = pagination.page_size(r.page_size)
        start, end = period(r)
        updated_after = optional_time(r, "updated_after")
        state = convert.name_of(pb.TicketState, r.state, "state", required=False)
        category = code_of(r.category, "categories", "category") if r.category else ""
        unit = code_of(r.unit, "units", "unit") if r.unit else ""
        node = validate_path(r.node, field="node", allow_global=False) if r.node else ""
        text = validation.text(r.query, "query", max_len=100, required=False)
        fp = pagination.fingerprint(
            "tickets",
            principal.subject,
            state,
            category,
            unit,
            node,
            r.overdue_only,
            start,
            end,
            text,
            r.mine,
            updated_after,
        )
        cursor = pagination.decode_token(r.page_token, fp, t=dt.datetime, id=str)
        query = select(Ticket.__table__)
        if state:
            query = query.where(Ticket.state == state)
        if category:
            query = query.where(Ticket.category == category)
        if unit:
            query = query.where(Ticket.id.in_(select(TicketUnit.ticket_id).where(TicketUnit.unit == unit)))
        if node:
            query = query.where(within(Ticket.node, node))
        if r.overdue_only:
            query = query.where(or_(Ticket.acknowledge_overdue.is_(True), Ticket.resolve_overdue.is_(True)))
        if start:
            query = query.where(Ticket.create_time >= start)
        if end:
            query = query.where(Ticket.create_time < end)
        if updated_after:
            query = query.where(Ticket.update_time > updated_after)
        if text:
            query = query.where(
                or_(
                    Ticket.title.contains(text, autoescape=True),
                    Ticket.description.contains(text, autoescape=True),
                    Ticket.address.contains(text, autoescape=True),
                )
            )
        if r.mine:
            query = query.where(Ticket.reporter == principal.subject)
        if cursor:
            at, last = cursor["t"], cursor["id"]
            query = query.where(or_(Ticket.create_time < at, (Ticket.create_time == at) & (Ticket.id < last)))
        query = query.order_by(Ticket.create_time.desc(), Ticket.id.desc()).limit(size + 1)
        # Core statements, read-only rows (see _TICKET_WITH_UNITS).
        async with self.db.hot_reads() as reads:
            viewer = Viewer(principal, await units_of_caller(reads, principal))  # live, as ever
        async with self.db.read_engine.connect() as conn:
            query = query.where(viewer.visible())
            rows = cast(list[Ticket], (await conn.execute(query)).all())
            page, token = pagination.cut(
                rows, size, fp, lambda t: {"t": t.create_time.isoformat(), "id": t.id}
            )
            ids = [t.id for t in page]
            unit_rows = (
                cast(
                    list[TicketUnit],
                    (
                        await conn.execute(
                            select(TicketUnit.__table__).where(TicketUnit.__table__.c.ticket_id.in_(ids))
                        )
                    ).all(),
                )
                if ids
                else []
            )
        by_ticket: dict[str, list[TicketUnit]] = {}
        for u in unit_rows:
            by_ticket.setdefault(u.ticket_id, []).append(u)
        return [(t, by_ticket.get(t.id, [])) for t in page], token

    # `builtins.list` in the signatures below: in the class body `list` is the method above.
    async def timeline(
        self, principal: Principal, parent: str, size: int, token: str
    ) -> tuple[builtins.list[TimelineEntry], str]:
        row, _ = await self.get(principal, parent)
        size = pagination.page_size(size)
        fp = pagination.fingerprint("timeline", row.id)
        cursor = pagination.decode_token(token, fp, s=int)
        query = select(TimelineEntry).where(TimelineEntry.ticket_id == row.id)
        return await keyset.ascending(self.db, query, TimelineEntry.seq, "s", cursor, size, fp)

    # ------------------------------------------------------------------ the lifecycle

    def _command(self, r: pb.TransitionTicketRequest, action: Action, suggested: str) -> lifecycle.Command:
        lead = code_of(r.lead_unit, "units", "lead_unit") if r.lead_unit else ""
        if action == Action.DISPATCH and not lead:
            lead = suggested
        return lifecycle.Command(
            action=action,
            note=validation.text(r.note, "note", max_len=2000, required=False, multiline=True),
            lead_unit=lead,
            assisting_units=tuple(code_of(u, "units", "assisting_units") for u in r.assisting_units),
            rating=r.score if action == Action.RATE else None,
            reason=validation.text(r.reason, "reason", max_len=500, required=False),
        )

    async def _check_dispatch(self, session: AsyncSession, row: Ticket, command: lifecycle.Command) -> None:
        codes = [command.lead_unit, *command.assisting_units]
        if len(codes) > 10:
            raise InvalidArgument("at most 10 units", field="assisting_units")
        found = {
            u.code: u.node
            for u in (await session.execute(select(Unit).where(Unit.code.in_(codes)))).scalars()
        }
        for code in codes:
            if code not in found:
                raise InvalidArgument(
                    f"no unit units/{code}",
                    field="lead_unit" if code == command.lead_unit else "assisting_units",
                )
            served = found[code]
            if not (row.node == served or row.node.startswith(served + "/")):
                raise InvalidArgument(
                    f"units/{code} serves {served}, not {row.node}",
                    field="lead_unit" if code == command.lead_unit else "assisting_units",
                )

    async def _check_merge(self, session: AsyncSession, row: Ticket, original: str) -> Ticket:
        if not original:
            raise InvalidArgument("is required to merge", field="original")
        oid = validation.resource_id(original, "tickets", "original")
        if oid == row.id:
            raise InvalidArgument("a ticket cannot be merged into itself", field="original")
        target = await session.get(Ticket, oid)
        if target is None:
            raise InvalidArgument(f"no ticket tickets/{oid}", field="original")
        if target.street != row.street:
            raise InvalidArgument("the original belongs to another street", field="original")
        if target.state in FINAL_FOR_DUPLICATES:
            raise FailedPrecondition(f"the original is {target.state}; merge into the ticket it points to")
        return target

    @staticmethod
    def _decide(
        ticket: lifecycle.Ticket,
        command: lifecycle.Command,
        viewer: Viewer,
        unit: str,
        now: dt.datetime,
        window: dt.timedelta,
    ) -> tuple[lifecycle.Ticket, lifecycle.Entry]:
        """Try each role the caller holds; the first the lifecycle allows acts.

        Refused everywhere: a state refusal (the caller may act, the ticket can't) wins over a
        permission refusal, so a dispatcher is told "already dispatched", not "not allowed".
        """
        refusals: list[Exception] = []
        for actor in viewer.actors(unit):
            try:
                return lifecycle.apply(ticket, command, actor, now, reopen_window=window)
            except (PermissionDenied, FailedPrecondition) as exc:
                refusals.append(exc)
        for refusal in refusals:
            if isinstance(refusal, FailedPrecondition):
                raise refusal
        raise refusals[0] if refusals else PermissionDenied("the caller may not do that")

    async def transition(
        self, principal: Principal, r: pb.TransitionTicketRequest
    ) -> tuple[Ticket, builtins.list[TicketUnit]]:
        ticket_id = validation.resource_id(r.name, "tickets")
        action_name = convert.name_of(pb.Action, r.action, "action")
        if action_name == "submit":
            raise InvalidArgument("a ticket is submitted by CreateTicket", field="action")
        action = Action(action_name)
        unit = code_of(r.unit, "units", "unit") if r.unit else ""
        resolution_media = media_links(r.media_uris, "media_uris") if action == Action.RESOLVE else []
        comment = validation.text(r.comment, "comment", max_len=1000, required=False, multiline=True)
        outcome = convert.name_of(
            pb.MediationOutcome, r.mediation_outcome, "mediation_outcome", required=False
        )
        viewer = await self.viewer(principal)
        now = utcnow()
        async with self.db.transaction() as session:
            row = await get_row(session, Ticket, ticket_id, f"no ticket tickets/{ticket_id}", lock=True)
            units = await load_units(session, ticket_id)
            if not viewer.can_see(row, [u.unit for u in units]):
                raise PermissionDenied("the ticket is outside the caller's scope")
            counted = statistics.contribution(row)
            command = self._command(r, action, row.suggested_unit)
            if action == Action.DISPATCH and command.lead_unit:
                await self._check_dispatch(session, row, command)
            if action == Action.RESOLVE and row.kind == "dispute" and not outcome:
                raise InvalidArgument(
                    "a dispute is resolved with its mediation outcome", field="mediation_outcome"
                )
            original = await self._check_merge(session, row, r.original) if action == Action.MERGE else None
            before = domain_ticket(row, units)
            after, entry = self._decide(before, command, viewer, unit, now, self.settings.reopen_window)
            details = await self._apply(session, row, units, after, entry, command, now)
            if action == Action.RESOLVE:
                row.resolution = command.note
                row.resolution_media = json.dumps(resolution_media)
                row.mediation_outcome = outcome if row.kind == "dispute" else ""
                if row.mediation_outcome:
                    details["mediation_outcome"] = row.mediation_outcome
            elif action == Action.RATE:
                row.rating_comment = comment
                row.rating_by = principal.subject
                row.rating_time = now
                details.update(score=str(command.rating), comment=comment)
            elif action == Action.MERGE and original is not None:
                row.merged_into = original.id
                details["original"] = f"tickets/{original.id}"
            elif action == Action.REJECT:
                row.reject_reason = command.reason
            row.update_time = now
            facts.refresh(row)
            await session.flush()
            if action in _REWRITES_UNITS:
                units = await load_units(session, ticket_id)
            timeline = await append_entry(
                session,
                entry_values(
                    row.id,
                    entry.action.value,
                    entry.actor,
                    now,
                    entry.from_state.value,
                    entry.to_state.value,
                    note=entry.note,
                    unit=entry.unit,
                    details=details,
                ),
            )
            await announce(session, principal.subject, row, units, timeline)
            # Last before the commit: every transition of a district's month updates the same few
            # sum rows, and a transition holds their locks from here to its commit. Taken earlier,
            # they were held over three more round trips, and transitions queued on them (151/s,
            # p99 370 ms at 16 clients; bench/README.md, "Fifth pass").
            await statistics.record(session, counted, statistics.contribution(row))
            crashpoint("tickets.transition.before_commit")
        crashpoint("tickets.transition.after_commit")
        return row, units

    async def _apply(
        self,
        session: AsyncSession,
        row: Ticket,
        units: builtins.list[TicketUnit],
        after: lifecycle.Ticket,
        entry: lifecycle.Entry,
        command: lifecycle.Command,
        now: dt.datetime,
    ) -> dict[str, str]:
        """Carry the lifecycle's decision onto the row and its unit records; returns timeline details."""
        details: dict[str, str] = {}
        action = entry.action
        row.state = after.state.value
        row.escalated = after.escalated
        row.lead_unit = after.lead_unit
        row.rating = after.rating
        row.resolve_time = after.resolved_at
        if action == Action.DISPATCH:
            await session.execute(delete(TicketUnit).where(TicketUnit.ticket_id == row.id))
            await session.execute(
                insert(TicketUnit),
                [
                    {
                        "ticket_id": row.id,
                        "unit": code,
                        "role": "lead" if code == after.lead_unit else "assisting",
                        "status": "dispatched",
                        "reason": "",
                        "update_time": now,
                    }
                    for code in after.units
                ],
            )
            details["lead_unit"] = f"units/{after.lead_unit}"
            if command.assisting_units:
                details["assisting_units"] = ",".join(f"units/{u}" for u in command.assisting_units)
        elif action in (Action.ACKNOWLEDGE, Action.RETURN):
            if not after.units:  # the lead returned it: back to the dispatcher
                await session.execute(delete(TicketUnit).where(TicketUnit.ticket_id == row.id))
                row.acknowledge_time = None
            else:
                for u in units:
                    if u.unit == entry.unit:
                        u.status = after.units[u.unit].value
                        u.reason = command.reason if action == Action.RETURN else ""
                        u.update_time = now
            if action == Action.ACKNOWLEDGE and entry.unit == row.lead_unit and row.acknowledge_time is None:
                row.acknowledge_time = now
            if command.reason:
                details["reason"] = command.reason
        elif action in (Action.ESCALATE, Action.REOPEN, Action.ACCEPT_ESCALATION):
            await session.execute(delete(TicketUnit).where(TicketUnit.ticket_id == row.id))
            row.acknowledge_time = None
            if action != Action.ESCALATE:
                # A new owner or a second attempt: the clocks start again.
                category = await session.get(Category, row.category)
                assert category is not None
                row.acknowledge_deadline, row.resolve_deadline = deadlines(
                    category, now, await self.calendar.get(session)
                )
                row.acknowledge_overdue = row.resolve_overdue = False
            if action == Action.REOPEN:
                row.close_time = None
                row.rating_comment = row.rating_by = ""
                row.rating_time = None
        elif action == Action.CLOSE:
            row.close_time = now
        return details
