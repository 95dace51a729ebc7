"""Units, their members, the category catalogue and the working calendar."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import Set as AbstractSet

from google.protobuf.message import Message
from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import identity_pb2_grpc
from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import keyset, outbox, pagination, peers, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL, ancestors, validate_path
from govkit.db import Database, get_row, rowcount, utcnow
from govkit.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from govkit.hotreads import HotRead, Reader
from services.tickets import convert
from services.tickets.attributes import Definition, check_definitions
from services.tickets.calendar import WorkingCalendar
from services.tickets.models import CalendarDay, CalendarYear, Category, Unit, UnitMember, platform

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_SLA = dt.timedelta(days=365)
# What UpdateCategory may change; a new category is given all of them but `active`.
CATEGORY_FIELDS = frozenset(
    {
        "display_name",
        "group",
        "description",
        "keywords",
        "default_unit",
        "default_center",
        "priority",
        "matter_class",
        "attributes",
        "sla",
        "active",
        "public",
    }
)


def code_of(name: str, collection: str, field: str) -> str:
    code = name.removeprefix(f"{collection}/")
    if not _CODE.match(code):
        raise InvalidArgument(f"must be '{collection}/{{code}}' (1-40 of a-z, 0-9 and '-')", field=field)
    return code


async def emit(session: AsyncSession, actor: str, event_type: str, payload: Message, resource: str) -> None:
    await outbox.emit(session, platform.outbox, actor, event_type, payload, resource)


async def _member_event(
    session: AsyncSession, principal: Principal, event_type: str, unit: str, user_id: str
) -> None:
    await emit(
        session,
        principal.subject,
        event_type,
        events_pb2.UnitMemberChanged(
            member=f"units/{unit}/members/{user_id}", unit=f"units/{unit}", user=f"users/{user_id}"
        ),
        f"units/{unit}/members/{user_id}",
    )


class CalendarStore:
    """The working calendar from the database, shared by replicas; re-read when a year changes."""

    def __init__(self, db: Database, check_every: float = 5.0) -> None:
        self.db = db
        self.check_every = check_every
        self._calendar = WorkingCalendar()
        self._version: tuple[object, ...] | None = None
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._checked = float("-inf")

    async def get(self, session: AsyncSession | None = None) -> WorkingCalendar:
        """The calendar, re-read at most every `check_every` seconds. A caller inside a write
        transaction passes its session: a second pooled connection could starve the pool."""
        if time.monotonic() - self._checked < self.check_every:
            return self._calendar
        async with self._lock:
            if session is not None:
                await self._refresh(session)
            else:
                async with self.db.sessions() as own:
                    await self._refresh(own)
        return self._calendar

    async def _refresh(self, session: AsyncSession) -> None:
        version: tuple[object, ...] = tuple(
            (await session.execute(select(func.count(), func.max(CalendarYear.update_time)))).one()
        )
        if version != self._version:
            rows = (await session.execute(select(CalendarDay))).scalars().all()
            self._calendar = WorkingCalendar().with_days(
                (dt.date.fromisoformat(r.day), r.kind, r.name) for r in rows
            )
            self._version = version
        self._checked = time.monotonic()


class CatalogueFlows:
    def __init__(
        self,
        db: Database,
        calendar: CalendarStore,
        identity: identity_pb2_grpc.IdentityServiceStub | None = None,
    ) -> None:
        self.db = db
        self.calendar = calendar
        self.identity = identity

    # ------------------------------------------------------------------ units

    async def create_unit(self, principal: Principal, unit: pb.Unit) -> Unit:
        code = code_of(unit.code, "units", "unit.code")
        node = validate_path(unit.node, field="unit.node", allow_global=False)
        principal.require(Permission.TICKETS_CONFIGURE, node)
        row = Unit(
            code=code,
            display_name=validation.text(unit.display_name, "unit.display_name", max_len=64),
            kind=convert.name_of(pb.UnitKind, unit.kind, "unit.kind"),
            node=node,
            create_time=utcnow(),
        )
        try:
            async with self.db.transaction() as session:
                session.add(row)
                await session.flush()
                await emit(
                    session,
                    principal.subject,
                    "tickets.v1.unit.created",
                    events_pb2.UnitCreated(unit=convert.unit(row)),
                    f"units/{code}",
                )
        except IntegrityError:
            raise AlreadyExists(f"unit {code} already exists", field="unit.code") from None
        return row

    async def get_unit(self, code: str) -> Unit:
        async with self.db.sessions() as session:
            return await get_row(session, Unit, code, f"no unit units/{code}")

    async def list_units(self, node: str, size: int, token: str) -> tuple[list[Unit], str]:
        size = pagination.page_size(size)
        fp = pagination.fingerprint("units", node)
        cursor = pagination.decode_token(token, fp, code=str)
        query = select(Unit)
        if node:
            # Units serving the node, anything above it, or anything below it.
            path = validate_path(node, field="node", allow_global=False)
            query = query.where(
                or_(Unit.node.in_(ancestors(path)), Unit.node.startswith(path + "/", autoescape=True))
            )
        return await keyset.ascending(self.db, query, Unit.code, "code", cursor, size, fp)

    async def _unit_for_staffing(self, principal: Principal, code: str) -> Unit:
        unit = await self.get_unit(code)
        principal.require(Permission.UNITS_STAFF, unit.node)
        return unit

    async def add_member(self, principal: Principal, parent: str, user: str) -> UnitMember:
        unit = await self._unit_for_staffing(principal, code_of(parent, "units", "parent"))
        user_id = validation.resource_id(user, "users", "user")
        if self.identity is not None:
            await peers.require_user(self.identity, principal, user_id, "user")
        row = UnitMember(unit_code=unit.code, user_id=user_id, create_time=utcnow())
        try:
            async with self.db.transaction() as session:
                session.add(row)
                await session.flush()
                await _member_event(session, principal, "tickets.v1.unit_member.added", unit.code, user_id)
        except IntegrityError:
            raise AlreadyExists(f"users/{user_id} is already a member of units/{unit.code}") from None
        return row

    async def remove_member(self, principal: Principal, name: str) -> None:
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "units" or parts[2] != "members":
            raise InvalidArgument("must be 'units/{code}/members/{user_id}'", field="name")
        unit = await self._unit_for_staffing(principal, code_of(parts[1], "units", "name"))
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(UnitMember).where(UnitMember.unit_code == unit.code, UnitMember.user_id == parts[3])
            )
            if rowcount(result) == 0:
                raise NotFound(f"no member {name}")
            await _member_event(session, principal, "tickets.v1.unit_member.removed", unit.code, parts[3])

    async def list_members(
        self, principal: Principal, parent: str, size: int, token: str
    ) -> tuple[list[UnitMember], str]:
        unit = await self.get_unit(code_of(parent, "units", "parent"))
        if not principal.can(Permission.UNITS_STAFF, unit.node) and unit.code not in await self.units_of(
            principal
        ):
            raise PermissionDenied(
                f"only the unit's own staff or a dispatcher of {unit.node} see its members"
            )
        size = pagination.page_size(size)
        fp = pagination.fingerprint("members", unit.code)
        cursor = pagination.decode_token(token, fp, u=str)
        query = select(UnitMember).where(UnitMember.unit_code == unit.code)
        return await keyset.ascending(self.db, query, UnitMember.user_id, "u", cursor, size, fp)

    async def units_of(self, principal: Principal) -> dict[str, str]:
        """The units the caller staffs right now (code -> node): read on every call."""
        async with self.db.hot_reads() as reads:
            return await units_of_caller(reads, principal)

    # ------------------------------------------------------------------ categories

    async def _check_routing(self, session: AsyncSession, category: Category) -> None:
        if category.default_unit and await session.get(Unit, category.default_unit) is None:
            raise InvalidArgument(f"no unit units/{category.default_unit}", field="category.default_unit")
        if category.default_unit and category.default_center:
            raise InvalidArgument(
                "route to a named unit or to a center of the street, not both",
                field="category.default_center",
            )
        if category.default_center == "department":
            raise InvalidArgument(
                "a center kind, or default_unit for a department", field="category.default_center"
            )

    def _apply(self, row: Category, c: pb.Category, fields: AbstractSet[str]) -> None:
        if "display_name" in fields:
            row.display_name = validation.text(c.display_name, "category.display_name", max_len=64)
        if "group" in fields:
            row.group_name = validation.text(c.group, "category.group", max_len=64)
        if "description" in fields:
            row.description = validation.text(
                c.description, "category.description", max_len=2000, required=False, multiline=True
            )
        if "keywords" in fields:
            if len(c.keywords) > 30:
                raise InvalidArgument("at most 30 keywords", field="category.keywords")
            row.keywords = json.dumps(
                [validation.text(k, "category.keywords", max_len=32) for k in c.keywords], ensure_ascii=False
            )
        if "default_unit" in fields:
            row.default_unit = (
                code_of(c.default_unit, "units", "category.default_unit") if c.default_unit else ""
            )
        if "default_center" in fields:
            row.default_center = convert.name_of(
                pb.UnitKind, c.default_center, "category.default_center", required=False
            )
        if "priority" in fields:
            row.priority = convert.name_of(pb.Priority, c.priority, "category.priority")
        if "matter_class" in fields:
            row.matter_class = convert.name_of(pb.MatterClass, c.matter_class, "category.matter_class")
        if "attributes" in fields:
            defs = [
                Definition(
                    code=a.code,
                    display_name=a.display_name,
                    type=convert.name_of(pb.AttributeType, a.type, f"category.attributes[{i}].type"),
                    required=a.required,
                    description=a.description,
                    options=tuple((o.key, o.display_name) for o in a.options),
                )
                for i, a in enumerate(c.attributes)
            ]
            check_definitions(defs)
            row.attributes = json.dumps([d.to_json() for d in defs], ensure_ascii=False)
        if "sla" in fields:
            ack = c.sla.acknowledge_within.ToTimedelta()
            resolve = c.sla.resolve_within.ToTimedelta()
            for value, name in ((ack, "acknowledge_within"), (resolve, "resolve_within")):
                if not dt.timedelta(seconds=1) <= value <= MAX_SLA:
                    raise InvalidArgument(
                        "must be between 1 second and 365 days", field=f"category.sla.{name}"
                    )
            if ack > resolve:
                raise InvalidArgument(
                    "cannot be longer than resolve_within", field="category.sla.acknowledge_within"
                )
            row.acknowledge_seconds = int(ack.total_seconds())
            row.resolve_seconds = int(resolve.total_seconds())
            row.sla_clock = convert.name_of(pb.SlaClock, c.sla.clock, "category.sla.clock")
            row.escalate_on_acknowledge_breach = c.sla.escalate_on_acknowledge_breach
        if "active" in fields:
            row.active = c.active
        if "public" in fields:
            row.public = c.public

    async def create_category(self, principal: Principal, c: pb.Category) -> Category:
        principal.require(Permission.TICKETS_CONFIGURE, GLOBAL)
        now = utcnow()
        row = Category(
            code=code_of(c.code, "categories", "category.code"),
            kind=convert.name_of(pb.TicketKind, c.kind, "category.kind", required=False) or "general",
            active=True,
            create_time=now,
            update_time=now,
        )
        if not c.HasField("sla"):
            raise InvalidArgument("is required", field="category.sla")
        self._apply(row, c, CATEGORY_FIELDS - {"active"})
        try:
            async with self.db.transaction() as session:
                await self._check_routing(session, row)
                session.add(row)
                await session.flush()
                await emit(
                    session,
                    principal.subject,
                    "tickets.v1.category.created",
                    events_pb2.CategoryChanged(category=convert.category(row)),
                    f"categories/{row.code}",
                )
        except IntegrityError:
            raise AlreadyExists(f"category {row.code} already exists", field="category.code") from None
        return row

    async def get_category(self, code: str) -> Category:
        async with self.db.sessions() as session:
            return await get_row(session, Category, code, f"no category categories/{code}")

    async def update_category(self, principal: Principal, c: pb.Category, paths: list[str]) -> Category:
        principal.require(Permission.TICKETS_CONFIGURE, GLOBAL)
        code = code_of(c.name or c.code, "categories", "category.name")
        async with self.db.transaction() as session:
            row = await get_row(session, Category, code, f"no category categories/{code}", lock=True)
            self._apply(row, c, set(paths))
            await self._check_routing(session, row)
            row.update_time = utcnow()
            await session.flush()
            await emit(
                session,
                principal.subject,
                "tickets.v1.category.changed",
                events_pb2.CategoryChanged(category=convert.category(row)),
                f"categories/{row.code}",
            )
        return row

    async def list_categories(
        self, group: str, query_text: str, include_inactive: bool, size: int, token: str
    ) -> tuple[list[Category], str]:
        size = pagination.page_size(size)
        fp = pagination.fingerprint("categories", group, query_text, include_inactive)
        cursor = pagination.decode_token(token, fp, g=str, c=str)
        query = select(Category).order_by(Category.group_name, Category.code).limit(size + 1)
        if group:
            query = query.where(Category.group_name == group)
        if not include_inactive:
            query = query.where(Category.active.is_(True))
        if query_text:
            q = validation.text(query_text, "query", max_len=64)
            query = query.where(
                or_(
                    Category.display_name.contains(q, autoescape=True),
                    Category.code.contains(q, autoescape=True),
                    Category.keywords.contains(json.dumps(q, ensure_ascii=False)[1:-1], autoescape=True),
                )
            )
        if cursor:
            g, c = cursor["g"], cursor["c"]
            query = query.where(
                or_(Category.group_name > g, (Category.group_name == g) & (Category.code > c))
            )
        async with self.db.sessions() as session:
            rows = list((await session.execute(query)).scalars())
        return pagination.cut(rows, size, fp, lambda r: {"g": r.group_name, "c": r.code})

    # ------------------------------------------------------------------ calendar

    async def set_calendar_year(self, principal: Principal, year_msg: pb.CalendarYear) -> int:
        principal.require(Permission.TICKETS_CONFIGURE, GLOBAL)
        year = year_msg.year or year_of(year_msg.name)
        if not 2000 <= year <= 2100:
            raise InvalidArgument("must be 2000-2100", field="calendar_year.year")
        rows: dict[str, CalendarDay] = {}
        for i, d in enumerate(year_msg.days):
            where = f"calendar_year.days[{i}]"
            try:
                day = dt.date.fromisoformat(d.date)
            except ValueError:
                raise InvalidArgument("date must be YYYY-MM-DD", field=f"{where}.date") from None
            if day.year != year:
                raise InvalidArgument(f"{day} is not in {year}", field=f"{where}.date")
            kind = convert.name_of(pb.DayKind, d.kind, f"{where}.kind")
            if kind == "workday" and day.weekday() < 5:
                raise InvalidArgument(
                    f"{day} is a weekday already; a make-up workday falls on a weekend", field=where
                )
            if d.date in rows:
                raise InvalidArgument(f"{day} appears twice", field=where)
            rows[d.date] = CalendarDay(
                day=d.date,
                year=year,
                kind=kind,
                name=validation.text(d.display_name, f"{where}.display_name", max_len=40, required=False),
            )
        async with self.db.transaction() as session:
            await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
            session.add_all(rows.values())
            existing = await session.get(CalendarYear, year)
            now = utcnow()
            if existing is None:
                session.add(CalendarYear(year=year, update_time=now))
            else:
                existing.update_time = now
            await emit(
                session,
                principal.subject,
                "tickets.v1.calendar_year.changed",
                events_pb2.CalendarYearChanged(
                    calendar_year=convert.calendar_year(year, list(rows.values()), now)
                ),
                f"calendarYears/{year}",
            )
        self.calendar.invalidate()
        return year

    async def get_calendar_year(self, year: int) -> tuple[list[CalendarDay], dt.datetime | None]:
        async with self.db.sessions() as session:
            head = await get_row(session, CalendarYear, year, f"no calendar loaded for {year}")
            days = (
                (
                    await session.execute(
                        select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
                    )
                )
                .scalars()
                .all()
            )
        return list(days), head.update_time


def year_of(name: str) -> int:
    raw = name.removeprefix("calendarYears/")
    if not raw.isdigit():
        raise InvalidArgument("must be 'calendarYears/{year}'", field="name")
    return int(raw)


_CALLER_UNITS = HotRead(
    select(Unit.__table__.c.code, Unit.__table__.c.node)
    .join(UnitMember.__table__, UnitMember.__table__.c.unit_code == Unit.__table__.c.code)
    .where(UnitMember.__table__.c.user_id == bindparam("user"))
)


async def units_of_caller(reads: Reader, principal: Principal) -> dict[str, str]:
    """The units the caller staffs right now (code -> node), as a hot read (a ticket's view reads
    them on the connection it reads the ticket on)."""
    if not principal.user_id:
        return {}
    return {code: node for code, node in await reads.all(_CALLER_UNITS, user=principal.user_id)}
