"""One household, one file: buildings, households, residents, home visits, and node statistics."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence

from sqlalchemy import delete, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from govkit import keyset, pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.db import Database, get_row, new_id, utcnow
from govkit.emitter import Emitter
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.idempotency import Command, IdempotencyKeys
from govkit.sqlpaths import any_within, within
from services.blocks import convert, domain
from services.blocks.access import load_access
from services.blocks.flows import node_path, staff_by_block
from services.blocks.models import (
    MOVES,
    Building,
    Household,
    Node,
    Resident,
    Visit,
    platform,
)

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_ID_SUFFIX = re.compile(r"^[0-9]{3}[0-9Xx]$|^[0-9]{4}$")


def _tags(values: Sequence[int], field: str = "household.tags") -> str:
    names = set()
    for value in values:
        name = convert.enum_name(pb.VulnerabilityTag, "VULNERABILITY_TAG", value)
        if name is None:
            raise InvalidArgument(f"unknown tag {value}", field=field)
        names.add(name)
    return ",".join(sorted(names))


def _resident_rows(residents: Sequence[pb.Resident], household_id: str) -> list[Resident]:
    rows, names = [], set()
    for i, r in enumerate(residents):
        f = f"household.residents[{i}]"
        name = validation.text(r.display_name, f"{f}.display_name", max_len=64)
        if name in names:
            raise InvalidArgument("appears twice in this household", field=f"{f}.display_name")
        names.add(name)
        relation = convert.enum_name(pb.Relation, "RELATION", r.relation)
        if relation is None:
            raise InvalidArgument("is required", field=f"{f}.relation")
        if r.birth_year and not 1900 <= r.birth_year <= utcnow().year:
            raise InvalidArgument(f"must be between 1900 and {utcnow().year}", field=f"{f}.birth_year")
        if r.id_suffix and not _ID_SUFFIX.match(r.id_suffix):
            raise InvalidArgument(
                "is the last 4 characters of an id number, never the whole number", field=f"{f}.id_suffix"
            )
        rows.append(
            Resident(
                id=new_id(),
                household_id=household_id,
                display_name=name,
                relation=relation,
                phone=validation.normalize_phone(r.phone, field=f"{f}.phone") if r.phone else None,
                birth_year=r.birth_year or None,
                id_suffix=r.id_suffix.upper() or None,
                user_id=validation.resource_id(r.user, "users", field=f"{f}.user") if r.user else None,
            )
        )
    return rows


def _phrases(values: Sequence[str], field: str) -> list[str]:
    """A visit's problems: at most 50 short phrases."""
    phrases = [validation.text(v, f"{field}[{n}]", max_len=200) for n, v in enumerate(values)]
    if len(phrases) > 50:
        raise InvalidArgument("at most 50", field=field)
    return phrases


def _resident_facts(rows: Sequence[Resident]) -> list[tuple[object, ...]]:
    """What a residents list says, whatever the row ids: to tell a real change from a re-save."""
    return sorted((r.display_name, r.relation, r.phone, r.birth_year, r.id_suffix, r.user_id) for r in rows)


class HouseholdFlows:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.idempotency = IdempotencyKeys(db, platform.idempotency)
        self._emit = Emitter(platform.outbox)

    @staticmethod
    async def _block(session: AsyncSession, path: str) -> Node:
        # Shared row lock: a concurrent move of this block (or of a node above it) waits for this
        # transaction, so its path rewrite also catches the rows written here.
        node = await session.scalar(select(Node).where(Node.path == path).with_for_update(read=True))
        if node is None:
            raise NotFound(f"nodes/{path} not found")
        if node.kind != "block" or node.state != "active":
            raise FailedPrecondition(f"nodes/{path} is not an active block")
        return node

    @staticmethod
    async def _residents(session: AsyncSession, household_ids: list[str]) -> dict[str, list[Resident]]:
        out: dict[str, list[Resident]] = {h: [] for h in household_ids}
        if household_ids:
            rows = await session.scalars(
                select(Resident)
                .where(Resident.household_id.in_(household_ids))
                .order_by(Resident.display_name)
            )
            for r in rows:
                out[r.household_id].append(r)
        return out

    async def _load(
        self, session: AsyncSession, principal: Principal, household_id: str, *, edit: bool
    ) -> Household:
        # An edit locks the row: a concurrent move rewriting its block path waits for it.
        household = await get_row(
            session, Household, household_id, f"households/{household_id} not found", lock=edit
        )
        access = await load_access(session, principal)
        if edit:
            allowed = access.can_edit(household.block_path)
        else:
            allowed = access.can_read(household.block_path) or await self._is_member(
                session, principal, household
            )
        if not allowed:
            # Ids are random UUIDs, so saying "not yours" reveals nothing worth hiding.
            raise PermissionDenied(f"households/{household_id} is outside the caller's scope")
        return household

    @staticmethod
    async def _is_member(session: AsyncSession, principal: Principal, household: Household) -> bool:
        """A resident linked to this household sees it: their own file."""
        if principal.user_id is None:
            return False
        found = await session.scalar(
            select(Resident.id).where(
                Resident.household_id == household.id, Resident.user_id == principal.user_id
            )
        )
        return found is not None

    # ------------------------------------------------------------------ buildings

    async def create_building(self, principal: Principal, b: pb.Building) -> Building:
        block = node_path(b.block, field="building.block")
        code = b.code.strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", code):
            raise InvalidArgument("1-32 of a-z, 0-9, '_', '-'", field="building.code")
        (await load_access(self.db, principal)).require_edit(block)
        try:
            async with self.db.transaction() as session:
                await self._block(session, block)
                row = Building(
                    id=new_id(),
                    block_path=block,
                    code=code,
                    display_name=validation.text(b.display_name, "building.display_name", max_len=64),
                    address=validation.text(b.address, "building.address", max_len=200, required=False),
                )
                session.add(row)
                await session.flush()
                await self._emit(
                    session,
                    principal,
                    "blocks.v1.building.created",
                    events_pb2.BuildingCreated(
                        building=f"nodes/{block}/buildings/{code}",
                        block=block,
                        code=code,
                        display_name=row.display_name,
                        tree_version=await MOVES.version(session),
                    ),
                    f"nodes/{block}/buildings/{code}",
                )
                return row
        except IntegrityError:
            raise AlreadyExists(f"building {code} already exists in {block}") from None

    async def list_buildings(
        self, principal: Principal, block: str, page_size: int, page_token: str
    ) -> tuple[list[Building], str]:
        block = node_path(block, field="block")
        (await load_access(self.db, principal)).require_read(block)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("buildings", block)
        cursor = pagination.decode_token(page_token, fp, i=str)
        stmt = select(Building).where(within(Building.block_path, block))
        rows, token = await keyset.ascending(self.db, stmt, Building.id, "i", cursor, size, fp)
        return rows, token

    # ------------------------------------------------------------------ households

    async def create_household(self, principal: Principal, h: pb.Household, command: Command) -> pb.Household:
        if (earlier := await self.idempotency.recall(command, pb.Household)) is not None:
            return earlier
        block = node_path(h.block, field="household.block")
        code = h.code.strip()
        if not _CODE.match(code):
            raise InvalidArgument("1-40 of A-Z, a-z, 0-9, '_', '-'", field="household.code")
        address = validation.text(h.address, "household.address", max_len=200)
        tags = _tags(h.tags)
        (await load_access(self.db, principal)).require_edit(block)
        household_id = new_id()
        residents = _resident_rows(h.residents, household_id)
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                if (earlier := await self.idempotency.claim(session, command, pb.Household)) is not None:
                    return earlier
                await self._block(session, block)
                if h.building and not await session.scalar(
                    select(Building.id).where(Building.block_path == block, Building.code == h.building)
                ):
                    raise InvalidArgument(
                        f"no building {h.building!r} in {block}", field="household.building"
                    )
                if await session.scalar(select(Household.id).where(Household.code == code)):
                    raise AlreadyExists(
                        f"a household with code {code} already exists", field="household.code"
                    )
                row = Household(
                    id=household_id,
                    code=code,
                    block_path=block,
                    building_code=h.building or None,
                    address=address,
                    tags=tags,
                    create_time=now,
                    update_time=now,
                )
                session.add(row)
                await session.flush()
                session.add_all(residents)
                await session.flush()
                created = convert.household(row, residents)
                await self.idempotency.record(session, command, created, f"households/{row.id}")
                await self._emit(
                    session,
                    principal,
                    "blocks.v1.household.created",
                    events_pb2.HouseholdCreated(
                        household=convert.household_summary(row, residents),
                        tree_version=await MOVES.version(session),
                    ),
                    f"households/{row.id}",
                )
                return created
        except IntegrityError:
            raise AlreadyExists(
                f"a household with code {code} already exists", field="household.code"
            ) from None

    async def get_household(
        self, principal: Principal, household_id: str
    ) -> tuple[Household, list[Resident]]:
        async with self.db.sessions() as session:
            row = await self._load(session, principal, household_id, edit=False)
            return row, (await self._residents(session, [row.id]))[row.id]

    async def list_households(
        self, principal: Principal, *, node: str, page_size: int, page_token: str, tag: int, query: str
    ) -> tuple[list[tuple[Household, list[Resident]]], str]:
        if not node.strip():
            return await self._own_households(principal)
        path = node_path(node, field="node")
        tag_name = _tags([tag], field="tag") if tag else ""
        query = query.strip()
        if len(query) > 64:
            raise InvalidArgument("must be at most 64 characters", field="query")
        access = await load_access(self.db, principal)
        scopes = access.read_scopes()
        if not access.can_read(path) and not any(s.startswith(path + "/") for s in scopes):
            raise PermissionDenied(f"the caller's scope does not cover '{path}'")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("households", principal.subject, path, tag_name, query)
        cursor = pagination.decode_token(page_token, fp, i=str)
        stmt = select(Household).where(
            within(Household.block_path, path), any_within(Household.block_path, scopes)
        )
        if tag_name:
            stmt = stmt.where((literal(",") + Household.tags + literal(",")).contains(f",{tag_name},"))
        if query:
            stmt = stmt.where(
                or_(
                    Household.address.contains(query, autoescape=True),
                    Household.code.contains(query, autoescape=True),
                )
            )
        if cursor:
            stmt = stmt.where(Household.id > cursor["i"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(stmt.order_by(Household.id).limit(size + 1))).all())
            rows, token = pagination.cut(rows, size, fp, lambda r: {"i": r.id})
            residents = await self._residents(session, [r.id for r in rows])
        return [(r, residents[r.id]) for r in rows], token

    async def _own_households(
        self, principal: Principal
    ) -> tuple[list[tuple[Household, list[Resident]]], str]:
        """The households the caller is a linked resident of (a resident's own file)."""
        if principal.user_id is None:
            return [], ""
        async with self.db.sessions() as session:
            rows = list(
                (
                    await session.scalars(
                        select(Household)
                        .join(Resident, Resident.household_id == Household.id)
                        .where(Resident.user_id == principal.user_id)
                        .order_by(Household.id)
                        .limit(pagination.MAX_PAGE_SIZE)
                    )
                ).all()
            )
            residents = await self._residents(session, [r.id for r in rows])
        return [(r, residents[r.id]) for r in rows], ""

    async def update_household(
        self, principal: Principal, h: pb.Household, paths: Sequence[str]
    ) -> tuple[Household, list[Resident]]:
        allowed = {"address", "tags", "residents", "building"}
        if not paths or set(paths) - allowed:
            raise InvalidArgument(f"may name {', '.join(sorted(allowed))}", field="update_mask")
        household_id = validation.resource_id(h.name, "households", field="household.name")
        async with self.db.transaction() as session:
            row = await self._load(session, principal, household_id, edit=True)
            changed: list[str] = []
            if "address" in paths:
                address = validation.text(h.address, "household.address", max_len=200)
                if address != row.address:
                    row.address = address
                    changed.append("address")
            if "tags" in paths:
                tags = _tags(h.tags)
                if tags != row.tags:
                    row.tags = tags
                    changed.append("tags")
            if "building" in paths:
                if h.building and not await session.scalar(
                    select(Building.id).where(
                        Building.block_path == row.block_path, Building.code == h.building
                    )
                ):
                    raise InvalidArgument(
                        f"no building {h.building!r} in {row.block_path}", field="household.building"
                    )
                if (h.building or None) != row.building_code:
                    row.building_code = h.building or None
                    changed.append("building")
            if "residents" in paths:
                fresh = _resident_rows(h.residents, row.id)
                current = (await self._residents(session, [row.id]))[row.id]
                if _resident_facts(fresh) != _resident_facts(current):  # else keep rows and ids
                    await session.execute(delete(Resident).where(Resident.household_id == row.id))
                    session.add_all(fresh)
                    changed.append("residents")
            if not changed:  # nothing to record, nothing to announce
                return row, (await self._residents(session, [row.id]))[row.id]
            row.update_time = utcnow()
            await session.flush()
            residents = (await self._residents(session, [row.id]))[row.id]
            await self._emit(
                session,
                principal,
                "blocks.v1.household.updated",
                events_pb2.HouseholdUpdated(
                    household=convert.household_summary(row, residents),
                    changed_fields=changed,
                    tree_version=await MOVES.version(session),
                ),
                f"households/{row.id}",
            )
            return row, residents

    async def move_household(
        self, principal: Principal, name: str, block: str, building: str
    ) -> tuple[Household, list[Resident]]:
        household_id = validation.resource_id(name, "households")
        target = node_path(block, field="block")
        access = await load_access(self.db, principal)
        access.require_edit(target)
        async with self.db.transaction() as session:
            row = await self._load(session, principal, household_id, edit=True)
            await self._block(session, target)
            if building and not await session.scalar(
                select(Building.id).where(Building.block_path == target, Building.code == building)
            ):
                raise InvalidArgument(f"no building {building!r} in {target}", field="building")
            previous = row.block_path
            row.block_path, row.building_code, row.update_time = target, building or None, utcnow()
            residents = (await self._residents(session, [row.id]))[row.id]
            await self._emit(
                session,
                principal,
                "blocks.v1.household.moved",
                events_pb2.HouseholdMoved(
                    household=convert.household_summary(row, residents),
                    previous_block=previous,
                    tree_version=await MOVES.version(session),
                ),
                f"households/{row.id}",
            )
            return row, residents

    # ------------------------------------------------------------------ visits

    async def record_visit(self, principal: Principal, v: pb.Visit, command: Command) -> pb.Visit:
        if (earlier := await self.idempotency.recall(command, pb.Visit)) is not None:
            return earlier
        household_id = validation.resource_id(v.household, "households", field="visit.household")
        notes = validation.text(v.notes, "visit.notes", max_len=4000, required=False)
        issues = _phrases(v.issues_found, "visit.issues_found")
        resolved = _phrases(v.issues_resolved, "visit.issues_resolved")
        when = v.visit_time.ToDatetime(tzinfo=dt.UTC) if v.HasField("visit_time") else utcnow()
        if when > utcnow() + dt.timedelta(minutes=5):
            raise InvalidArgument("cannot be in the future", field="visit.visit_time")
        async with self.db.transaction() as session:
            if (earlier := await self.idempotency.claim(session, command, pb.Visit)) is not None:
                return earlier
            household = await self._load(session, principal, household_id, edit=True)
            row = Visit(
                id=new_id(),
                household_id=household.id,
                block_path=household.block_path,
                visitor=principal.subject,
                visit_time=when,
                notes=notes,
                issues=json.dumps(issues, ensure_ascii=False),
                issues_resolved=json.dumps(resolved, ensure_ascii=False),
                create_time=utcnow(),
            )
            session.add(row)
            await session.flush()
            recorded = convert.visit(row)
            await self.idempotency.record(
                session, command, recorded, f"households/{household.id}/visits/{row.id}"
            )
            await self._emit(
                session,
                principal,
                "blocks.v1.visit.recorded",
                events_pb2.VisitRecorded(
                    visit=convert.visit_summary(row), tree_version=await MOVES.version(session)
                ),
                f"households/{household.id}/visits/{row.id}",
            )
            return recorded

    async def list_visits(
        self,
        principal: Principal,
        *,
        household: str,
        node: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Visit], str]:
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("visits", principal.subject, household, node, str(start), str(end))
        cursor = pagination.decode_token(page_token, fp, i=str)
        stmt = select(Visit)
        async with self.db.sessions() as session:
            if household:
                row = await self._load(
                    session,
                    principal,
                    validation.resource_id(household, "households", field="household"),
                    edit=False,
                )
                stmt = stmt.where(Visit.household_id == row.id)
            else:
                path = node_path(node, field="node")
                access = await load_access(session, principal)
                access.require_read(path)
                stmt = stmt.where(within(Visit.block_path, path))
            if start:
                stmt = stmt.where(Visit.visit_time >= start)
            if end:
                stmt = stmt.where(Visit.visit_time < end)
            if cursor:
                stmt = stmt.where(Visit.id > cursor["i"])
            rows = list((await session.scalars(stmt.order_by(Visit.id).limit(size + 1))).all())
        rows, token = pagination.cut(rows, size, fp, lambda r: {"i": r.id})
        return rows, token

    # ------------------------------------------------------------------ statistics

    async def statistics(
        self, principal: Principal, path: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> pb.NodeStatistics:
        path = node_path(path)
        (await load_access(self.db, principal)).require_read(path, Permission.REGIONS_READ)
        end = end or utcnow()
        start = start or end - dt.timedelta(days=30)
        if start > end:
            raise InvalidArgument("must be before end_time", field="start_time")
        async with self.db.sessions() as session:
            if not await session.scalar(select(Node.id).where(Node.path == path)):
                raise NotFound(f"nodes/{path} not found")
            blocks = await session.scalar(
                select(func.count()).where(
                    Node.kind == "block", Node.state == "active", within(Node.path, path)
                )
            )
            households = await session.scalar(select(func.count()).where(within(Household.block_path, path)))
            vulnerable = await session.scalar(
                select(func.count()).where(within(Household.block_path, path), Household.tags != "")
            )
            residents = await session.scalar(
                select(func.count(Resident.id))
                .join(Household, Household.id == Resident.household_id)
                .where(within(Household.block_path, path))
            )
            visits = await session.scalar(
                select(func.count()).where(
                    within(Visit.block_path, path), Visit.visit_time >= start, Visit.visit_time < end
                )
            )
            block_paths, by_block = await staff_by_block(session, path)
        full = sum(1 for b in block_paths if not domain.staffing_violations(by_block[b]))
        return pb.NodeStatistics(
            node=f"nodes/{path}",
            blocks=blocks or 0,
            households=households or 0,
            residents=residents or 0,
            staff=len({s.user_id for staff in by_block.values() for s in staff}),
            vulnerable_households=vulnerable or 0,
            visits=visits or 0,
            fully_staffed_blocks=full,
        )
