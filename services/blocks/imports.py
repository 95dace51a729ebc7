"""Bulk import of region trees, boundaries, buildings, households and residents.

Each file is all-or-nothing (one transaction) and idempotent: rows are matched on their
natural keys (node path, building code in its block, household code, resident name in its
household) and only real differences are written, so re-importing a file changes nothing.
Every bad row is reported with its line number; nothing is committed if any row is bad.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.db import Database, new_id, utcnow
from govkit.errors import DomainError, InvalidArgument, PermissionDenied
from govkit.events import build_event
from govkit.outbox import add_event
from services.blocks import domain, geo, importfiles
from services.blocks.access import load_access
from services.blocks.importfiles import RowError
from services.blocks.models import Building, Household, Node, Resident, platform

MAX_BYTES = 200 * 1024 * 1024
# gRPC trailers are small: the first errors travel as details, the count in the message.
MAX_REPORTED = 100
CHUNK = 5000
# ORM bulk inserts leave NULL columns out and split a batch wherever the set of NULL columns
# changes (450,000 residents became 217,000 statements); rendering NULLs keeps one batch per chunk.
BULK_INSERT = {"render_nulls": True}
NOT_PERMITTED_TREE = "the caller may not manage this part of the tree"
NOT_PERMITTED_BLOCK = "the caller may not change this block"


@dataclass
class Counts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _failed(kind: str, errors: list[RowError]) -> DomainError:
    first = errors[0]
    if all(e.message in (NOT_PERMITTED_TREE, NOT_PERMITTED_BLOCK) for e in errors):
        return PermissionDenied(f"{kind}: {first.message} (line {first.line}: {first.field})")
    return InvalidArgument(
        f"{kind}: {len(errors)} bad row(s), nothing imported; "
        f"first: line {first.line}, {first.field}: {first.message}",
        violations=[(f"line {e.line}: {e.field}", e.message) for e in errors[:MAX_REPORTED]],
    )


def _chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> Iterable[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class ImportFlows:
    def __init__(self, db: Database, on_geometry_change: Callable[[], None]) -> None:
        self.db = db
        self.on_geometry_change = on_geometry_change

    async def import_file(
        self, principal: Principal, kind_value: pb.ImportKind, content: bytes, *, validate_only: bool = False
    ) -> pb.ImportFileResponse:
        kind = {
            pb.IMPORT_KIND_NODES: "nodes",
            pb.IMPORT_KIND_BOUNDARIES: "boundaries",
            pb.IMPORT_KIND_BUILDINGS: "buildings",
            pb.IMPORT_KIND_HOUSEHOLDS: "households",
            pb.IMPORT_KIND_RESIDENTS: "residents",
        }.get(kind_value)
        if kind is None:
            raise InvalidArgument("is required", field="kind")
        if len(content) > MAX_BYTES:
            raise InvalidArgument(
                f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; split the file", field="content"
            )
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"is not UTF-8 (byte {exc.start})", field="content") from None
        parse = getattr(importfiles, f"parse_{kind}")
        try:
            # Parsing 200,000 rows takes seconds: keep the event loop answering meanwhile.
            rows = await asyncio.to_thread(parse, text)
        except importfiles.ImportFileError as exc:
            if validate_only:
                return pb.ImportFileResponse(
                    errors=[
                        pb.ImportRowError(line=e.line, field=e.field, message=e.message)
                        for e in exc.errors[:MAX_REPORTED]
                    ]
                )
            raise _failed(kind, exc.errors) from None
        access = await load_access(self.db, principal)
        apply = getattr(self, f"_apply_{kind}")
        async with self.db.write_sessions() as session:
            transaction = await session.begin()
            try:
                counts, errors = await apply(session, access, rows)
                if errors or validate_only:
                    await transaction.rollback()
                    if errors and not validate_only:
                        raise _failed(kind, errors)
                    return pb.ImportFileResponse(
                        rows=counts.rows,
                        created=counts.created,
                        updated=counts.updated,
                        unchanged=counts.unchanged,
                        errors=[
                            pb.ImportRowError(line=e.line, field=e.field, message=e.message)
                            for e in errors[:MAX_REPORTED]
                        ],
                    )
                # One summary event, not one per row: an import of 200,000 households is one change.
                await add_event(
                    session,
                    platform.outbox,
                    build_event(
                        "blocks.v1.import.completed",
                        events_pb2.ImportCompleted(
                            kind=kind_value,
                            created=counts.created,
                            updated=counts.updated,
                            unchanged=counts.unchanged,
                        ),
                        actor=principal.subject,
                        resource=f"imports/{kind}",
                    ),
                )
                await transaction.commit()
            except BaseException:
                if transaction.is_active:
                    await transaction.rollback()
                raise
        if kind in ("nodes", "boundaries"):
            self.on_geometry_change()
        return pb.ImportFileResponse(
            rows=counts.rows, created=counts.created, updated=counts.updated, unchanged=counts.unchanged
        )

    # ------------------------------------------------------------------ one method per file kind

    async def _apply_nodes(
        self, session: AsyncSession, access: domain.Access, rows: list[importfiles.NodeRow]
    ) -> tuple[Counts, list[RowError]]:
        existing = {r.path: r for r in (await session.scalars(select(Node))).all()}
        counts, errors, now = Counts(rows=len(rows)), [], utcnow()
        for row in rows:  # parents come first
            parent = row.path.rpartition("/")[0]
            if not access.principal.can(Permission.REGIONS_MANAGE, parent or row.path):
                errors.append(RowError(row.line, "path", NOT_PERMITTED_TREE))
                continue
            node = existing.get(row.path)
            if node is None:
                if parent and parent not in existing:
                    errors.append(RowError(row.line, "path", f"parent {parent} does not exist"))
                    continue
                node = Node(
                    id=new_id(),
                    path=row.path,
                    code=row.path.rpartition("/")[2],
                    parent_path=parent,
                    kind=row.kind,
                    display_name=row.name,
                    boundary=None,
                    state="active",
                    create_time=now,
                    update_time=now,
                )
                session.add(node)
                existing[row.path] = node
                counts.created += 1
            elif node.kind != row.kind:
                errors.append(RowError(row.line, "kind", f"{row.path} exists as a {node.kind}"))
            elif node.display_name != row.name:
                node.display_name, node.update_time = row.name, now
                counts.updated += 1
            else:
                counts.unchanged += 1
        await session.flush()
        return counts, errors

    async def _apply_boundaries(
        self, session: AsyncSession, access: domain.Access, rows: list[importfiles.BoundaryRow]
    ) -> tuple[Counts, list[RowError]]:
        paths = [r.path for r in rows]
        nodes = {n.path: n for n in (await session.scalars(select(Node).where(Node.path.in_(paths)))).all()}
        counts, errors, now = Counts(rows=len(rows)), [], utcnow()
        for row in rows:
            node = nodes.get(row.path)
            if node is None:
                errors.append(
                    RowError(row.line, "path", f"{row.path} does not exist; import it in nodes.csv first")
                )
                continue
            if not access.principal.can(Permission.REGIONS_MANAGE, row.path):
                errors.append(RowError(row.line, "path", NOT_PERMITTED_TREE))
                continue
            try:
                boundary = json.dumps(geo.to_geojson(geo.parse_boundary(row.geometry, field="geometry")))
            except DomainError as exc:
                errors.append(RowError(row.line, "geometry", exc.message))
                continue
            changed = node.boundary != boundary or (row.name is not None and row.name != node.display_name)
            if changed:
                node.boundary = boundary
                node.display_name = row.name or node.display_name
                node.update_time = now
                counts.updated += 1
            else:
                counts.unchanged += 1
        await session.flush()
        return counts, errors

    @staticmethod
    async def _blocks(session: AsyncSession) -> set[str]:
        return set(
            (
                await session.scalars(select(Node.path).where(Node.kind == "block", Node.state == "active"))
            ).all()
        )

    async def _apply_buildings(
        self, session: AsyncSession, access: domain.Access, rows: list[importfiles.BuildingRow]
    ) -> tuple[Counts, list[RowError]]:
        blocks = await self._blocks(session)
        existing = {(b.block_path, b.code): b for b in (await session.scalars(select(Building))).all()}
        counts, errors, new = Counts(rows=len(rows)), [], []
        for row in rows:
            if row.block_path not in blocks:
                errors.append(RowError(row.line, "block_path", f"{row.block_path} is not an active block"))
            elif not access.can_edit(row.block_path):
                errors.append(RowError(row.line, "block_path", NOT_PERMITTED_BLOCK))
            elif (found := existing.get((row.block_path, row.code))) is None:
                new.append(
                    {
                        "id": new_id(),
                        "block_path": row.block_path,
                        "code": row.code,
                        "display_name": row.name,
                        "address": row.address,
                    }
                )
            elif (found.display_name, found.address) != (row.name, row.address):
                found.display_name, found.address = row.name, row.address
                counts.updated += 1
            else:
                counts.unchanged += 1
        if not errors:
            for chunk in _chunks(new):
                await session.execute(insert(Building).execution_options(**BULK_INSERT), chunk)
        counts.created = len(new)
        return counts, errors

    async def _apply_households(
        self, session: AsyncSession, access: domain.Access, rows: list[importfiles.HouseholdRow]
    ) -> tuple[Counts, list[RowError]]:
        blocks = await self._blocks(session)
        buildings = set((await session.execute(select(Building.block_path, Building.code))).tuples().all())
        existing = {
            r.code: r
            for r in (
                await session.execute(
                    select(
                        Household.id,
                        Household.code,
                        Household.block_path,
                        Household.building_code,
                        Household.address,
                        Household.tags,
                    )
                )
            ).all()
        }
        counts, errors, new, changed, now = Counts(rows=len(rows)), [], [], [], utcnow()
        editable: dict[str, bool] = {}
        for row in rows:
            if row.block_path not in blocks:
                errors.append(RowError(row.line, "block_path", f"{row.block_path} is not an active block"))
                continue
            if editable.setdefault(row.block_path, access.can_edit(row.block_path)) is False:
                errors.append(RowError(row.line, "block_path", NOT_PERMITTED_BLOCK))
                continue
            if row.building_code and (row.block_path, row.building_code) not in buildings:
                errors.append(
                    RowError(
                        row.line, "building_code", f"no building {row.building_code} in {row.block_path}"
                    )
                )
                continue
            values = {
                "block_path": row.block_path,
                "building_code": row.building_code or None,
                "address": row.address,
                "tags": ",".join(sorted(set(row.tags))),
            }
            found = existing.get(row.code)
            if found is None:
                new.append(
                    {"id": new_id(), "code": row.code, **values, "create_time": now, "update_time": now}
                )
            elif (found.block_path, found.building_code, found.address, found.tags) != tuple(values.values()):
                changed.append({"id": found.id, **values, "update_time": now})
            else:
                counts.unchanged += 1
        if not errors:
            for chunk in _chunks(new):
                await session.execute(insert(Household).execution_options(**BULK_INSERT), chunk)
            for chunk in _chunks(changed):
                await session.execute(update(Household), chunk)
        counts.created, counts.updated = len(new), len(changed)
        return counts, errors

    async def _apply_residents(
        self, session: AsyncSession, access: domain.Access, rows: list[importfiles.ResidentRow]
    ) -> tuple[Counts, list[RowError]]:
        households = {
            code: (hid, block)
            for hid, code, block in (
                await session.execute(select(Household.id, Household.code, Household.block_path))
            ).all()
        }
        existing = {
            (r.household_id, r.display_name): r
            for r in (
                await session.execute(
                    select(
                        Resident.id,
                        Resident.household_id,
                        Resident.display_name,
                        Resident.relation,
                        Resident.phone,
                        Resident.birth_year,
                        Resident.id_suffix,
                    )
                )
            ).all()
        }
        counts, errors, new, changed = Counts(rows=len(rows)), [], [], []
        editable: dict[str, bool] = {}
        for row in rows:
            target = households.get(row.household_code)
            if target is None:
                errors.append(
                    RowError(
                        row.line,
                        "household_code",
                        f"no household {row.household_code}; import households first",
                    )
                )
                continue
            hid, block = target
            if editable.setdefault(block, access.can_edit(block)) is False:
                errors.append(RowError(row.line, "household_code", NOT_PERMITTED_BLOCK))
                continue
            values = {
                "relation": row.relation,
                "phone": row.phone,
                "birth_year": row.birth_year,
                "id_suffix": row.id_suffix,
            }
            found = existing.get((hid, row.name))
            if found is None:
                new.append(
                    {"id": new_id(), "household_id": hid, "display_name": row.name, "user_id": None, **values}
                )
            elif (found.relation, found.phone, found.birth_year, found.id_suffix) != tuple(values.values()):
                changed.append({"id": found.id, **values})
            else:
                counts.unchanged += 1
        if not errors:
            for chunk in _chunks(new):
                await session.execute(insert(Resident).execution_options(**BULK_INSERT), chunk)
            for chunk in _chunks(changed):
                await session.execute(update(Resident), chunk)
        counts.created, counts.updated = len(new), len(changed)
        return counts, errors
