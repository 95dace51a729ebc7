"""Reporting a problem: where it is, who may report it there, its deadlines, possible duplicates."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import cast

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import peers, validation
from govkit.auth.principal import Principal
from govkit.auth.scopes import validate_path
from govkit.crashpoint import crashpoint
from govkit.db import Database, new_id, utcnow
from govkit.errors import InvalidArgument, PermissionDenied, Unavailable
from govkit.idempotency import Command, IdempotencyKeys
from services.tickets import convert, facts, statistics
from services.tickets.access import Viewer
from services.tickets.attributes import check_values
from services.tickets.catalogue import CalendarStore, CatalogueFlows, code_of, emit
from services.tickets.flows import FINAL_FOR_DUPLICATES, Settings, append_entry, deadlines, media_links
from services.tickets.models import Category, Ticket, Unit, platform

_CATEGORY_BY_CODE = select(Category.__table__).where(Category.__table__.c.code == bindparam("code"))

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
        async with self.db.read_engine.connect() as conn:
            # A read-only row (Core, no session): read live, as an inactive category takes no report.
            category = cast(Category | None, (await conn.execute(_CATEGORY_BY_CODE, {"code": code})).first())
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
