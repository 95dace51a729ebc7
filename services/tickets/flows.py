"""Tickets' use cases: report, read, list, move through the lifecycle, read the timeline.

Each mutating use case is one transaction holding the ticket row, its timeline entry and its
event (transactional outbox), so a crash keeps all three or none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Sequence

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import pagination, peers, validation
from govkit.auth.principal import Principal
from govkit.auth.scopes import validate_path
from govkit.crashpoint import crashpoint
from govkit.db import Database, new_id, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from govkit.idempotency import Command, IdempotencyKeys
from govkit.protobuf import optional_time, period
from govkit.sqlpaths import within
from services.tickets import convert, facts, lifecycle, statistics
from services.tickets.access import Viewer
from services.tickets.attributes import check_values
from services.tickets.calendar import WorkingCalendar, deadline
from services.tickets.catalogue import CalendarStore, CatalogueFlows, code_of, emit
from services.tickets.lifecycle import Action, State, UnitStatus
from services.tickets.models import Category, Ticket, TicketUnit, TimelineEntry, Unit, platform

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
EARTH_RADIUS_M = 6_371_008.8


@dataclasses.dataclass(frozen=True)
class Settings:
    reopen_window: dt.timedelta = dt.timedelta(days=7)
    duplicate_radius_m: float = 150.0
    duplicate_window: dt.timedelta = dt.timedelta(hours=72)


def _media(uris: Sequence[str], field: str) -> list[str]:
    if len(uris) > MAX_MEDIA:
        raise InvalidArgument(f"at most {MAX_MEDIA} links", field=field)
    for i, uri in enumerate(uris):
        if not _URI.match(uri):
            raise InvalidArgument("must be an http(s) URL of at most 500 characters", field=f"{field}[{i}]")
    return list(uris)


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine): plenty for "within 150 m"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


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


def levels(node: str) -> tuple[str, str, str]:
    """(district, street, community) of a node; community is "" for a street."""
    codes = node.split("/")
    if len(codes) < 2:
        raise InvalidArgument("must be a street or a node below one", field="ticket.node")
    return codes[0], "/".join(codes[:2]), "/".join(codes[:3]) if len(codes) > 2 else ""


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


async def load_units(session: AsyncSession, ticket_id: str) -> list[TicketUnit]:
    return list(
        (await session.execute(select(TicketUnit).where(TicketUnit.ticket_id == ticket_id))).scalars()
    )


async def append_entry(
    session: AsyncSession,
    ticket_id: str,
    action: str,
    actor: str,
    time: dt.datetime,
    from_state: str,
    to_state: str,
    note: str = "",
    unit: str = "",
    details: dict[str, str] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        ticket_id=ticket_id,
        action=action,
        actor=actor,
        time=time,
        from_state=from_state,
        to_state=to_state,
        note=note,
        unit=unit,
        details=json.dumps(details or {}, ensure_ascii=False),
    )
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
        blocks: blocks_pb2_grpc.BlocksServiceStub | None,
        settings: Settings | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.calendar = calendar
        self.blocks = blocks
        self.settings = settings or Settings()
        self.idempotency = IdempotencyKeys(db, platform.idempotency)

    async def viewer(self, principal: Principal) -> Viewer:
        return Viewer(principal, await self.catalogue.units_of(principal))

    # ------------------------------------------------------------------ reporting

    async def _locate(
        self, principal: Principal, t: pb.Ticket
    ) -> tuple[str, float | None, float | None, str | None]:
        """(node, latitude, longitude, household id) from a point, a household or a named node."""
        loc = t.location
        if loc.has_point:
            lat, lng = loc.latitude, loc.longitude
            if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not (
                math.isfinite(lat) and math.isfinite(lng)
            ):
                raise InvalidArgument("latitude -90..90, longitude -180..180", field="ticket.location")
            block = await self._ask_blocks(
                principal,
                "LocateBlock",
                blocks_pb2.LocateBlockRequest(lat=lat, lng=lng),
                "the point is not inside any block",
                "ticket.location",
            )
            return block.block.path, lat, lng, None
        if loc.household:
            hid = validation.resource_id(loc.household, "households", "ticket.location.household")
            household = await self._ask_blocks(
                principal,
                "GetHousehold",
                blocks_pb2.GetHouseholdRequest(name=f"households/{hid}"),
                "no such household within the caller's reach",
                "ticket.location.household",
            )
            return household.block, None, None, hid
        if not loc.address.strip():
            raise InvalidArgument(
                "give a point, a household, or an address with the node it is in", field="ticket.location"
            )
        if not t.node:
            raise InvalidArgument("is required with an address-only location", field="ticket.node")
        path = validate_path(t.node, field="ticket.node", allow_global=False)
        node = await self._ask_blocks(
            principal,
            "GetNode",
            blocks_pb2.GetNodeRequest(name=f"nodes/{path}"),
            f"no node {path}",
            "ticket.node",
        )
        if node.state == blocks_pb2.NODE_STATE_RETIRED:
            raise InvalidArgument(f"{path} is retired and takes no new reports", field="ticket.node")
        return path, None, None, None

    async def _ask_blocks(self, principal: Principal, method: str, request, not_found: str, field: str):  # type: ignore[no-untyped-def]
        if self.blocks is None:
            raise Unavailable("the blocks service is not configured")
        return await peers.ask(
            getattr(self.blocks, method), request, principal, peer="blocks", refused=not_found, field=field
        )

    def _check_source(self, viewer: Viewer, source: str, node: str) -> None:
        if source == "resident":
            return
        if source in ("hotline", "service"):
            if viewer.principal.is_user and not viewer.dispatches_for(node):
                raise PermissionDenied(f"only an internal system or a dispatcher files {source} reports")
            return
        # patrol, visit, deliberation
        if not viewer.is_staff_for(node) and not viewer.units:
            raise PermissionDenied(f"only staff working at {node} file {source} reports")

    async def _suggested_unit(self, session: AsyncSession, category: Category, street: str) -> str:
        if category.default_unit:
            return category.default_unit
        if not category.default_center:
            return ""
        code = await session.scalar(
            select(Unit.code)
            .where(Unit.kind == category.default_center, Unit.node == street)
            .order_by(Unit.code)
            .limit(1)
        )
        return code or ""

    async def _duplicates(
        self,
        session: AsyncSession,
        category: str,
        now: dt.datetime,
        lat: float | None,
        lng: float | None,
        household: str | None,
    ) -> list[str]:
        if lat is None and household is None:
            return []
        near = []
        if household is not None:
            near.append(Ticket.household_id == household)
        if lat is not None and lng is not None:
            dlat = self.settings.duplicate_radius_m / 111_000
            dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
            near.append(
                Ticket.latitude.between(lat - dlat, lat + dlat)
                & Ticket.longitude.between(lng - dlng, lng + dlng)
            )
        rows = (
            await session.execute(
                select(Ticket.id, Ticket.latitude, Ticket.longitude, Ticket.household_id)
                .where(
                    Ticket.category == category,
                    Ticket.create_time >= now - self.settings.duplicate_window,
                    Ticket.state.not_in(FINAL_FOR_DUPLICATES),
                    or_(*near),
                )
                .order_by(Ticket.create_time.desc())
                .limit(20)
            )
        ).all()
        found = []
        for tid, tlat, tlng, thh in rows:
            same_household = household is not None and thh == household
            close = (
                lat is not None
                and tlat is not None
                and distance_m(lat, lng, tlat, tlng) <= self.settings.duplicate_radius_m  # type: ignore[arg-type]
            )
            if same_household or close:
                found.append(tid)
        return found[:5]

    async def create(self, principal: Principal, t: pb.Ticket, command: Command) -> pb.Ticket:
        if (earlier := await self.idempotency.recall(command, pb.Ticket)) is not None:
            return earlier
        if not t.category:
            raise InvalidArgument("is required", field="ticket.category")
        code = code_of(t.category, "categories", "ticket.category")
        async with self.db.sessions() as session:
            category = await session.get(Category, code)
        if category is None:
            raise InvalidArgument(f"no category categories/{code}", field="ticket.category")
        if not category.active:
            raise InvalidArgument(f"categories/{code} takes no new tickets", field="ticket.category")
        source = convert.name_of(pb.TicketSource, t.source, "ticket.source", required=False) or "resident"
        title = validation.text(t.title, "ticket.title", max_len=200, required=False) or category.display_name
        description = validation.text(
            t.description, "ticket.description", max_len=4000, required=False, multiline=True
        )
        media = _media(t.media_uris, "ticket.media_uris")
        values = check_values(convert.definitions(category), [(a.code, list(a.values)) for a in t.attributes])
        contact_name = validation.text(
            t.contact.display_name, "ticket.contact.display_name", max_len=64, required=False
        )
        contact_phone = (
            validation.normalize_phone(t.contact.phone, "ticket.contact.phone")
            if t.contact.phone.strip()
            else ""
        )
        address = validation.text(t.location.address, "ticket.location.address", max_len=300, required=False)
        node, lat, lng, household = await self._locate(principal, t)
        district, street, community = levels(node)
        viewer = await self.viewer(principal)
        self._check_source(viewer, source, node)
        calendar = await self.calendar.get()
        now = utcnow()
        ack_by, resolve_by = deadlines(category, now, calendar)
        row = Ticket(
            id=new_id(),
            category=category.code,
            kind=category.kind,
            state="submitted",
            source=source,
            title=title,
            description=description,
            media=json.dumps(media),
            latitude=lat,
            longitude=lng,
            household_id=household,
            address=address,
            node=node,
            street=street,
            district=district,
            community=community,
            reporter=principal.subject,
            contact_name=contact_name,
            contact_phone=contact_phone,
            attributes=json.dumps(values, ensure_ascii=False),
            priority=category.priority,
            matter_class=category.matter_class,
            lead_unit="",
            escalated=False,
            acknowledge_deadline=ack_by,
            resolve_deadline=resolve_by,
            acknowledge_overdue=False,
            resolve_overdue=False,
            resolution="",
            resolution_media="[]",
            mediation_outcome="",
            rating_comment="",
            rating_by="",
            merged_into="",
            reject_reason="",
            create_time=now,
            update_time=now,
        )
        facts.refresh(row)
        async with self.db.transaction() as session:
            if (earlier := await self.idempotency.claim(session, command, pb.Ticket)) is not None:
                return earlier
            row.suggested_unit = await self._suggested_unit(session, category, street)
            row.possible_duplicates = json.dumps(
                await self._duplicates(session, category.code, now, lat, lng, household)
            )
            session.add(row)
            await session.flush()
            await statistics.record(session, None, statistics.contribution(row))
            await append_entry(
                session,
                row.id,
                "submit",
                principal.subject,
                now,
                "",
                "submitted",
                note=source,
                details={"source": source},
            )
            created = convert.ticket(row, [])
            await self.idempotency.record(session, command, created, f"tickets/{row.id}")
            await emit(
                session,
                principal.subject,
                "tickets.v1.ticket.created",
                events_pb2.TicketCreated(ticket=convert.ticket_summary(row, [])),
                f"tickets/{row.id}",
            )
            crashpoint("tickets.create.before_commit")
        return created

    # ------------------------------------------------------------------ reading

    async def _read(self, ticket_id: str) -> tuple[Ticket, list[TicketUnit]]:
        async with self.db.sessions() as session:
            row = await session.get(Ticket, ticket_id)
            if row is None:
                raise NotFound(f"no ticket tickets/{ticket_id}")
            return row, await load_units(session, ticket_id)

    async def get(self, principal: Principal, name: str) -> tuple[Ticket, list[TicketUnit]]:
        row, units = await self._read(validation.resource_id(name, "tickets"))
        viewer = await self.viewer(principal)
        if not viewer.can_see(row, [u.unit for u in units]):
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
        viewer = await self.viewer(principal)
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
        query = select(Ticket).where(viewer.visible())
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
        async with self.db.sessions() as session:
            rows = list((await session.execute(query)).scalars())
            page, token = pagination.cut(
                rows, size, fp, lambda t: {"t": t.create_time.isoformat(), "id": t.id}
            )
            ids = [t.id for t in page]
            unit_rows = (
                (await session.execute(select(TicketUnit).where(TicketUnit.ticket_id.in_(ids))))
                .scalars()
                .all()
                if ids
                else []
            )
        by_ticket: dict[str, list[TicketUnit]] = {}
        for u in unit_rows:
            by_ticket.setdefault(u.ticket_id, []).append(u)
        return [(t, by_ticket.get(t.id, [])) for t in page], token

    async def timeline(
        self, principal: Principal, parent: str, size: int, token: str
    ) -> tuple[list[TimelineEntry], str]:
        row, _ = await self.get(principal, parent)
        size = pagination.page_size(size)
        fp = pagination.fingerprint("timeline", row.id)
        cursor = pagination.decode_token(token, fp, s=int)
        query = (
            select(TimelineEntry)
            .where(TimelineEntry.ticket_id == row.id)
            .order_by(TimelineEntry.seq)
            .limit(size + 1)
        )
        if cursor:
            query = query.where(TimelineEntry.seq > cursor["s"])
        async with self.db.sessions() as session:
            rows = list((await session.execute(query)).scalars())
        return pagination.cut(rows, size, fp, lambda e: {"s": e.seq})

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
        for exc in refusals:
            if isinstance(exc, FailedPrecondition):
                raise exc
        raise refusals[0] if refusals else PermissionDenied("the caller may not do that")

    async def transition(
        self, principal: Principal, r: pb.TransitionTicketRequest
    ) -> tuple[Ticket, list[TicketUnit]]:
        ticket_id = validation.resource_id(r.name, "tickets")
        action_name = convert.name_of(pb.Action, r.action, "action")
        if action_name == "submit":
            raise InvalidArgument("a ticket is submitted by CreateTicket", field="action")
        action = Action(action_name)
        unit = code_of(r.unit, "units", "unit") if r.unit else ""
        resolution_media = _media(r.media_uris, "media_uris") if action == Action.RESOLVE else []
        comment = validation.text(r.comment, "comment", max_len=1000, required=False, multiline=True)
        outcome = convert.name_of(
            pb.MediationOutcome, r.mediation_outcome, "mediation_outcome", required=False
        )
        viewer = await self.viewer(principal)
        now = utcnow()
        async with self.db.transaction() as session:
            row = await session.get(Ticket, ticket_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no ticket tickets/{ticket_id}")
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
            await statistics.record(session, counted, statistics.contribution(row))
            units = await load_units(session, ticket_id)
            timeline = await append_entry(
                session,
                row.id,
                entry.action.value,
                entry.actor,
                now,
                entry.from_state.value,
                entry.to_state.value,
                note=entry.note,
                unit=entry.unit,
                details=details,
            )
            await announce(session, principal.subject, row, units, timeline)
            crashpoint("tickets.transition.before_commit")
        crashpoint("tickets.transition.after_commit")
        return row, units

    async def _apply(
        self,
        session: AsyncSession,
        row: Ticket,
        units: list[TicketUnit],
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
                    category, now, await self.calendar.get()
                )
                row.acknowledge_overdue = row.resolve_overdue = False
            if action == Action.REOPEN:
                row.close_time = None
                row.rating_comment = row.rating_by = ""
                row.rating_time = None
        elif action == Action.CLOSE:
            row.close_time = now
        return details
