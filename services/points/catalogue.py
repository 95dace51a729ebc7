"""The indicator catalogue (versioned, inherited down the region tree) and the love bank's
exchange points and items: configured by leaders within their scope, read by everyone signed in."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence

from google.protobuf import json_format
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.points.v1 import points_pb2 as pb
from govkit import keyset, pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import ancestors, covers, validate_path
from govkit.db import Database, get_row, new_id, rowcount, utcnow
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.points import convert, domain
from services.points.domain import IndicatorKind, IndicatorTerms, Period
from services.points.models import ExchangePoint, Indicator, IndicatorSwitch, IndicatorVersion, Item

INDICATOR_FIELDS = (
    "display_name",
    "description",
    "points",
    "evidence_required",
    "approval_required",
    "cap_count",
    "cap_period",
    "validity_months",
    "active",
    "credit_household",
)
EXCHANGE_POINT_FIELDS = ("display_name", "address", "staff", "active")
ITEM_FIELDS = (
    "display_name",
    "description",
    "kind",
    "price",
    "stock",
    "limit_per_person",
    "limit_period",
    "active",
)
_ITEM_NAME = re.compile(r"^exchangePoints/([^/]{1,36})/items/([^/]{1,36})$")


def resource_id(name: str, collection: str, field: str = "name") -> str:
    return validation.resource_id(name, collection, field)


def item_ids(name: str, field: str = "name") -> tuple[str, str]:
    match = _ITEM_NAME.match(name)
    if not match:
        raise InvalidArgument("must be exchangePoints/{id}/items/{id}", field=field)
    return match.group(1), match.group(2)


def terms_of(row: Indicator) -> IndicatorTerms:
    return IndicatorTerms(
        kind=IndicatorKind(row.kind),
        points=row.points,
        evidence_required=row.evidence_required,
        approval_required=row.approval_required,
        cap_count=row.cap_count,
        cap_period=Period(row.cap_period) if row.cap_period else None,
        validity_months=row.validity_months,
    )


def require_configure(principal: Principal, node: str) -> None:
    if not principal.can(Permission.POINTS_CONFIGURE, node):
        raise PermissionDenied(f"only a leader whose scope covers {node} configures points there")


class Catalogue:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # ---------------------------------------------------------------- indicators

    def _apply_indicator(self, row: Indicator, msg: pb.Indicator, paths: Sequence[str]) -> None:
        p = "indicator"
        if "display_name" in paths:
            row.display_name = validation.text(msg.display_name, f"{p}.display_name", max_len=64)
        if "description" in paths:
            row.description = validation.text(
                msg.description, f"{p}.description", max_len=2000, required=False, multiline=True
            )
        for flag in (
            "points",
            "evidence_required",
            "approval_required",
            "cap_count",
            "validity_months",
            "active",
            "credit_household",
        ):
            if flag in paths:
                setattr(row, flag, getattr(msg, flag))
        if "cap_period" in paths:
            row.cap_period = convert.name_of(pb.Period, msg.cap_period, f"{p}.cap_period", required=False)
        domain.check_terms(terms_of(row))

    async def _snapshot(self, session: AsyncSession, row: Indicator) -> None:
        session.add(
            IndicatorVersion(
                indicator_id=row.id,
                version=row.version,
                snapshot=json_format.MessageToJson(convert.indicator(row)),
                create_time=row.update_time,
            )
        )

    async def create_indicator(self, principal: Principal, msg: pb.Indicator) -> Indicator:
        node = validate_path(msg.node, field="indicator.node", allow_global=False)
        require_configure(principal, node)
        now = self.clock()
        row = Indicator(
            id=new_id(),
            node=node,
            code=domain.code(msg.code, "indicator.code"),
            kind=convert.name_of(pb.IndicatorKind, msg.kind, "indicator.kind"),
            version=1,
            create_time=now,
            update_time=now,
        )
        row.active = True  # a new indicator is in force; switch it off with an update
        self._apply_indicator(row, msg, [f for f in INDICATOR_FIELDS if f != "active"])
        try:
            async with self.db.transaction() as session:
                session.add(row)
                await session.flush()
                await self._snapshot(session, row)
        except IntegrityError:
            raise AlreadyExists(
                f"{node} already has an indicator {row.code}", field="indicator.code"
            ) from None
        return row

    async def get_indicator(self, name: str, version: int = 0) -> pb.Indicator:
        iid = resource_id(name, "indicators")
        async with self.db.sessions() as session:
            if version:
                return await indicator_version(session, iid, version)
            row = await get_row(session, Indicator, iid, f"no indicators/{iid}")
        return convert.indicator(row)

    async def list_indicators(self, req: pb.ListIndicatorsRequest) -> tuple[list[Indicator], str]:
        node = validate_path(req.node, field="node", allow_global=False)
        kind = convert.name_of(pb.IndicatorKind, req.kind, "kind", required=False)
        size = pagination.page_size(req.page_size)
        fp = pagination.fingerprint("indicators", node, req.published_here, kind)
        cursor = pagination.decode_token(req.page_token, fp, n=str, c=str)
        async with self.db.sessions() as session:
            if req.published_here:
                stmt = select(Indicator).where(Indicator.node == node)
            else:
                stmt = select(Indicator).where(
                    Indicator.node.in_(ancestors(node)), Indicator.active.is_(True)
                )
            if kind:
                stmt = stmt.where(Indicator.kind == kind)
            rows = list((await session.scalars(stmt)).all())
            if not req.published_here:
                off = await self._switched_off(session, [r.id for r in rows], node)
                rows = [r for r in rows if domain.in_force_at(node, r.node, off.get(r.id, []))]
        rows.sort(key=lambda r: (r.node, r.code))
        if cursor:
            rows = [r for r in rows if (r.node, r.code) > (cursor["n"], cursor["c"])]
        return pagination.cut(rows[: size + 1], size, fp, lambda r: {"n": r.node, "c": r.code})

    async def _switched_off(self, session: AsyncSession, ids: list[str], node: str) -> dict[str, list[str]]:
        off: dict[str, list[str]] = {}
        if ids:
            for s in await session.scalars(
                select(IndicatorSwitch).where(
                    IndicatorSwitch.indicator_id.in_(ids),
                    IndicatorSwitch.node.in_(ancestors(node)),
                    IndicatorSwitch.disabled.is_(True),
                )
            ):
                off.setdefault(s.indicator_id, []).append(s.node)
        return off

    async def in_force(self, session: AsyncSession, indicator_id: str, node: str) -> Indicator:
        """The indicator as it is now, if it applies at `node`; INVALID_ARGUMENT otherwise."""
        row = await session.get(Indicator, indicator_id)
        if row is None:
            raise InvalidArgument(f"no indicators/{indicator_id}", field="award.indicator")
        off = (await self._switched_off(session, [row.id], node)).get(row.id, [])
        if not row.active or not domain.in_force_at(node, row.node, off):
            raise InvalidArgument(f"indicators/{row.id} is not in force at {node}", field="award.indicator")
        return row

    async def update_indicator(
        self, principal: Principal, msg: pb.Indicator, paths: Sequence[str]
    ) -> Indicator:
        iid = resource_id(msg.name, "indicators", "indicator.name")
        async with self.db.transaction() as session:
            row = await get_row(session, Indicator, iid, f"no indicators/{iid}", lock=True)
            require_configure(principal, row.node)
            self._apply_indicator(row, msg, paths)
            row.version += 1
            row.update_time = self.clock()
            await session.flush()
            await self._snapshot(session, row)
        return row

    async def set_availability(self, principal: Principal, msg: pb.IndicatorAvailability) -> IndicatorSwitch:
        iid = resource_id(msg.indicator, "indicators", "availability.indicator")
        node = validate_path(msg.node, field="availability.node", allow_global=False)
        require_configure(principal, node)
        async with self.db.transaction() as session:
            indicator = await get_row(session, Indicator, iid, f"no indicators/{iid}")
            if not covers(indicator.node, node):
                raise InvalidArgument(
                    f"must be at or below {indicator.node}, where the indicator is published",
                    field="availability.node",
                )
            switch = await session.get(IndicatorSwitch, (iid, node), with_for_update=True)
            if switch is None:
                switch = IndicatorSwitch(indicator_id=iid, node=node)
                session.add(switch)
            switch.disabled = msg.disabled
            switch.update_time = self.clock()
        return switch

    # ---------------------------------------------------------------- exchange points

    def _apply_point(self, row: ExchangePoint, msg: pb.ExchangePoint, paths: Sequence[str]) -> None:
        p = "exchange_point"
        if "display_name" in paths:
            row.display_name = validation.text(msg.display_name, f"{p}.display_name", max_len=64)
        if "address" in paths:
            row.address = validation.text(msg.address, f"{p}.address", max_len=300, required=False)
        if "staff" in paths:
            if len(msg.staff) > 50:
                raise InvalidArgument("at most 50 people", field=f"{p}.staff")
            row.staff = json.dumps(
                sorted({resource_id(u, "users", f"{p}.staff[{i}]") for i, u in enumerate(msg.staff)})
            )
        if "active" in paths:
            row.active = msg.active

    async def create_exchange_point(self, principal: Principal, msg: pb.ExchangePoint) -> ExchangePoint:
        node = validate_path(msg.node, field="exchange_point.node", allow_global=False)
        require_configure(principal, node)
        now = self.clock()
        row = ExchangePoint(id=new_id(), node=node, staff="[]", active=True, create_time=now, update_time=now)
        self._apply_point(row, msg, ("display_name", "address", "staff"))
        async with self.db.transaction() as session:
            session.add(row)
        return row

    async def get_exchange_point(self, name: str) -> ExchangePoint:
        pid = resource_id(name, "exchangePoints")
        async with self.db.sessions() as session:
            return await get_row(session, ExchangePoint, pid, f"no exchangePoints/{pid}")

    async def list_exchange_points(
        self, node: str, page_size: int, page_token: str
    ) -> tuple[list[ExchangePoint], str]:
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("exchange-points", node)
        cursor = pagination.decode_token(page_token, fp, i=str)
        stmt = select(ExchangePoint)
        if node:
            stmt = stmt.where(ExchangePoint.node.in_(ancestors(validate_path(node, field="node"))))
        return await keyset.ascending(self.db, stmt, ExchangePoint.id, "i", cursor, size, fp)

    async def update_exchange_point(
        self, principal: Principal, msg: pb.ExchangePoint, paths: Sequence[str]
    ) -> ExchangePoint:
        pid = resource_id(msg.name, "exchangePoints", "exchange_point.name")
        async with self.db.transaction() as session:
            row = await get_row(session, ExchangePoint, pid, f"no exchangePoints/{pid}", lock=True)
            require_configure(principal, row.node)
            self._apply_point(row, msg, paths)
            row.update_time = self.clock()
        return row

    # ---------------------------------------------------------------- items

    def _apply_item(self, row: Item, msg: pb.Item, paths: Sequence[str]) -> None:
        p = "item"
        if "display_name" in paths:
            row.display_name = validation.text(msg.display_name, f"{p}.display_name", max_len=64)
        if "description" in paths:
            row.description = validation.text(
                msg.description, f"{p}.description", max_len=2000, required=False, multiline=True
            )
        if "kind" in paths:
            row.kind = convert.name_of(pb.ItemKind, msg.kind, f"{p}.kind")
        if "price" in paths:
            if not 1 <= msg.price <= domain.MAX_POINTS:
                raise InvalidArgument(f"must be 1..{domain.MAX_POINTS}", field=f"{p}.price")
            row.price = msg.price
        if "stock" in paths:
            if not 0 <= msg.stock <= 1_000_000:
                raise InvalidArgument("must be 0..1000000", field=f"{p}.stock")
            row.stock = msg.stock
        if "limit_per_person" in paths:
            if msg.limit_per_person < 0:
                raise InvalidArgument("must not be negative", field=f"{p}.limit_per_person")
            row.limit_per_person = msg.limit_per_person
        if "limit_period" in paths:
            row.limit_period = convert.name_of(
                pb.Period, msg.limit_period, f"{p}.limit_period", required=False
            )
        if "active" in paths:
            row.active = msg.active
        if row.limit_per_person and not row.limit_period:
            raise InvalidArgument("is required with a limit_per_person", field=f"{p}.limit_period")

    async def create_item(self, principal: Principal, parent: str, msg: pb.Item) -> Item:
        point = await self.get_exchange_point(parent)
        require_configure(principal, point.node)
        now = self.clock()
        row = Item(
            id=new_id(),
            exchange_point_id=point.id,
            limit_per_person=0,
            limit_period="",
            active=True,
            create_time=now,
            update_time=now,
        )
        self._apply_item(
            row,
            msg,
            ("display_name", "description", "kind", "price", "stock", "limit_per_person", "limit_period"),
        )
        async with self.db.transaction() as session:
            session.add(row)
        return row

    async def get_item(self, name: str) -> Item:
        pid, iid = item_ids(name)
        async with self.db.sessions() as session:
            row = await session.get(Item, iid)
        if row is None or row.exchange_point_id != pid:
            raise NotFound(f"no {name}")
        return row

    async def list_items(self, req: pb.ListItemsRequest) -> tuple[list[Item], str]:
        point = await self.get_exchange_point(req.parent)
        size = pagination.page_size(req.page_size)
        fp = pagination.fingerprint("items", point.id, req.include_inactive)
        cursor = pagination.decode_token(req.page_token, fp, i=str)
        stmt = select(Item).where(Item.exchange_point_id == point.id)
        if not req.include_inactive:
            stmt = stmt.where(Item.active.is_(True))
        return await keyset.ascending(self.db, stmt, Item.id, "i", cursor, size, fp)

    async def update_item(self, principal: Principal, msg: pb.Item, paths: Sequence[str]) -> Item:
        pid, iid = item_ids(msg.name, "item.name")
        async with self.db.transaction() as session:
            point = await get_row(session, ExchangePoint, pid, f"no exchangePoints/{pid}")
            require_configure(principal, point.node)
            row = await session.get(Item, iid, with_for_update=True)
            if row is None or row.exchange_point_id != pid:
                raise NotFound(f"no {msg.name}")
            self._apply_item(row, msg, paths)
            row.update_time = self.clock()
        return row


async def take_stock(session: AsyncSession, item_id: str, quantity: int) -> None:
    """Take units off the shelf only if that many are there (a conditional UPDATE, exact under any
    concurrency); FAILED_PRECONDITION otherwise."""
    result = await session.execute(
        update(Item)
        .where(Item.id == item_id, Item.active.is_(True), Item.stock >= quantity)
        .values(stock=Item.stock - quantity)
    )
    if rowcount(result) != 1:
        raise FailedPrecondition("out of stock")


async def return_stock(session: AsyncSession, item_id: str, quantity: int) -> None:
    await session.execute(update(Item).where(Item.id == item_id).values(stock=Item.stock + quantity))


async def indicator_version(session: AsyncSession, iid: str, version: int) -> pb.Indicator:
    """The indicator as it stood at `version` (its snapshot), read in the caller's session."""
    snap = await get_row(
        session, IndicatorVersion, (iid, version), f"no version {version} of indicators/{iid}"
    )
    return json_format.Parse(snap.snapshot, pb.Indicator())
