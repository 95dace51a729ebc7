"""Reporting a problem: where it is, who may report it there, its deadlines, possible duplicates."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import cast

from sqlalchemy import bindparam, select

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import outbox, peers, validation
from govkit.auth.principal import Principal
from govkit.auth.scopes import validate_path
from govkit.crashpoint import crashpoint
from govkit.db import Database, is_sqlite, new_id, utcnow
from govkit.errors import InvalidArgument, PermissionDenied, Unavailable
from govkit.events import NewEvent, build_event
from govkit.hotreads import CoreReader, HotRead, Reader
from govkit.idempotency import Command, IdempotencyKeys
from services.tickets import convert, facts, report_write, statistics
from services.tickets.access import Viewer
from services.tickets.attributes import check_values
from services.tickets.catalogue import CalendarStore, CatalogueFlows, code_of
from services.tickets.flows import Settings, deadlines, entry_values, media_links
from services.tickets.models import Category, Ticket, platform

_CATEGORY_BY_CODE = HotRead(select(Category.__table__).where(Category.__table__.c.code == bindparam("code")))
# month_stats' key columns: the rest of a month row are counters the report adds to.
_MONTH_KEY = frozenset(c.key for c in report_write.SUMS.primary_key)

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine): plenty for "within 150 m"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def levels(node: str) -> tuple[str, str, str]:
    """(district, street, community) of a node; community is "" for a street."""
    codes = node.split("/")
    if len(codes) < 2:
        raise InvalidArgument("must be a street or a node below one", field="ticket.node")
    return codes[0], "/".join(codes[:2]), "/".join(codes[:3]) if len(codes) > 2 else ""


class ReportFlows:
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

    async def _check_source(self, principal: Principal, source: str, node: str) -> None:
        """May the caller file a report of this source here? The units they staff are read live,
        and only where they decide: residents' reports (nearly all) need no read."""
        if source == "resident":
            return
        token_only = Viewer(principal, {})
        if source in ("hotline", "service"):
            if principal.is_user and not token_only.dispatches_for(node):
                raise PermissionDenied(f"only an internal system or a dispatcher files {source} reports")
            return
        # patrol, visit, deliberation
        if not token_only.is_staff_for(node) and not (await self.viewer(principal)).units:
            raise PermissionDenied(f"only staff working at {node} file {source} reports")

    async def create(self, principal: Principal, t: pb.Ticket, command: Command) -> pb.Ticket:
        """Report a problem: a handful of Core statements, no ORM session or unit of work.

        On one read connection: the request id's earlier answer (before validating, so a retry
        answers even if the rules changed since), then the category, read live. Then the location
        (blocks), the caller's right to report there and the deadlines, the row built here. Then
        the suggested unit and the possible duplicates in one read, and the writes (report_write):
        the request id claimed with the answer, known by then, the ticket, its first timeline
        entry, its month sums and its event (outbox), all committed together or not at all.
        Database round trips: 4 on PostgreSQL, where the writes are one statement.
        """
        async with self.db.hot_reads() as reads:
            if (earlier := await self.idempotency.recall_on(reads, command, pb.Ticket)) is not None:
                return earlier
            if not t.category:
                raise InvalidArgument("is required", field="ticket.category")
            code = code_of(t.category, "categories", "ticket.category")
            # A read-only row (no session), as in flows.py.
            category = cast(Category | None, await reads.first(_CATEGORY_BY_CODE, code=code))
        if category is None:
            raise InvalidArgument(f"no category categories/{code}", field="ticket.category")
        if not category.active:
            raise InvalidArgument(f"categories/{code} takes no new tickets", field="ticket.category")
        source = convert.name_of(pb.TicketSource, t.source, "ticket.source", required=False) or "resident"
        title = validation.text(t.title, "ticket.title", max_len=200, required=False) or category.display_name
        description = validation.text(
            t.description, "ticket.description", max_len=4000, required=False, multiline=True
        )
        media = media_links(t.media_uris, "ticket.media_uris")
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
        await self._check_source(principal, source, node)
        calendar = await self.calendar.get()
        now = utcnow()
        ack_by, resolve_by = deadlines(category, now, calendar)
        # Every column of the table, so one INSERT shape serves every report; read by the
        # converters and statistics as a ticket row (by attribute name).
        row = cast(
            Ticket,
            SimpleNamespace(
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
                suggested_unit="",
                lead_unit="",
                escalated=False,
                acknowledge_deadline=ack_by,
                resolve_deadline=resolve_by,
                acknowledge_overdue=False,
                resolve_overdue=False,
                acknowledge_time=None,
                resolve_time=None,
                close_time=None,
                resolution="",
                resolution_media="[]",
                mediation_outcome="",
                rating=None,
                rating_comment="",
                rating_by="",
                rating_time=None,
                merged_into="",
                reject_reason="",
                possible_duplicates="[]",
                create_time=now,
                update_time=now,
            ),
        )
        facts.refresh(row)
        resource = f"tickets/{row.id}"
        entry = entry_values(
            row.id, "submit", principal.subject, now, "", "submitted", source, "", {"source": source}
        )
        if is_sqlite(self.db.url):
            async with self.db.transaction() as session:
                conn = await session.connection()
                # Read under the write lock, as SQLite serializes writers: a report sees the one
                # filed just before it at the same place.
                await self._suggest_and_find_duplicates(CoreReader(conn), row, category, household)
                created = convert.ticket(row, [])
                if (
                    earlier := await self.idempotency.claim_finished(conn, command, created, resource)
                ) is not None:
                    return earlier
                await conn.execute(report_write.INSERT_TICKET, vars(row))
                await statistics.record(conn, None, statistics.contribution(row))
                await conn.execute(report_write.INSERT_ENTRY, entry)
                event = self._event(principal, row, resource)
                await conn.execute(report_write.INSERT_OUTBOX, outbox.outbox_row(event))
                outbox.mark_staged(session, event.type)
                crashpoint("tickets.create.before_commit")
            return created
        # PostgreSQL: autocommit (the read engine), and the writes as one statement. Under READ
        # COMMITTED the candidates read here see what a read inside a transaction would.
        async with self.db.hot_reads() as reads:
            await self._suggest_and_find_duplicates(reads, row, category, household)
        async with self.db.read_engine.connect() as conn:
            created = convert.ticket(row, [])
            event = self._event(principal, row, resource)
            sums = statistics.month_row(statistics.contribution(row))
            params = {
                **{f"t_{k}": v for k, v in vars(row).items()},
                **{f"e_{k}": v for k, v in entry.items()},
                **{f"o_{k}": v for k, v in outbox.outbox_row(event).items()},
                **{f"s_{k}": v for k, v in sums.items()},
            }
            claim = None
            if command.key:
                claim = self.idempotency.claim_finished_statement("postgresql")
                params.update(self.idempotency.finished_row(command, created, resource))
            statement = report_write.write_once(claim, tuple(k for k in sums if k not in _MONTH_KEY))
            crashpoint("tickets.create.before_commit")
            if not await conn.scalar(statement, params):
                return await self.idempotency.earlier_answer(conn, command, pb.Ticket)
        outbox.committed(self.db, [event.type])
        return created

    async def _suggest_and_find_duplicates(
        self, reads: Reader, row: Ticket, category: Category, household: str | None
    ) -> None:
        """The suggested unit and the possible duplicates of `row`, in one read."""
        lat, lng = row.latitude, row.longitude
        by_point = lat is not None and lng is not None
        by_center = not category.default_unit and bool(category.default_center)
        row.suggested_unit = category.default_unit
        query = report_write.candidates(household is not None, by_point, by_center)
        if query is None:
            return
        params: dict[str, object] = {
            "category": category.code,
            "since": row.create_time - self.settings.duplicate_window,
            "household": household,
            "center": category.default_center,
            "street": row.street,
        }
        if lat is not None and lng is not None:
            dlat = self.settings.duplicate_radius_m / 111_000
            dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
            params.update(lat_lo=lat - dlat, lat_hi=lat + dlat, lng_lo=lng - dlng, lng_hi=lng + dlng)
        candidates = []
        for kind, tid, tlat, tlng, thh, created in await reads.all(query, **params):
            if kind == report_write.SUGGESTED:
                row.suggested_unit = tid
            else:
                candidates.append((created, tid, tlat, tlng, thh))
        # Newest first (a UNION ALL does not promise to keep its branches' order).
        candidates.sort(key=lambda c: c[0], reverse=True)
        found = []
        for _, tid, tlat, tlng, thh in candidates:
            same_household = household is not None and thh == household
            close = (
                lat is not None
                and tlat is not None
                and distance_m(lat, lng, tlat, tlng) <= self.settings.duplicate_radius_m  # type: ignore[arg-type]
            )
            if same_household or close:
                found.append(tid)
        row.possible_duplicates = json.dumps(found[:5])

    @staticmethod
    def _event(principal: Principal, row: Ticket, resource: str) -> NewEvent:
        return build_event(
            "tickets.v1.ticket.created",
            events_pb2.TicketCreated(ticket=convert.ticket_summary(row, [])),
            actor=principal.subject,
            resource=resource,
        )
