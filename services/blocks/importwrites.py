"""Import rows into the database, one kind of file each, inside the caller's transaction.

Nodes and boundaries (the tree: thousands of rows) are applied from the whole parsed file.
Buildings, households and residents (a district: 450,000 residents) are applied a chunk of rows
at a time (`RowWriter.add`): the existing rows a chunk is compared with are read for that chunk
only, by its keys, so memory stays flat however large the file is. Rows are matched on their
natural keys and only real differences are written, so re-importing a file changes nothing.

Every problem is recorded in the file's `Checker` with its line. Once one is found, nothing more
is written (the caller rolls the transaction back) but every row is still checked, so a file's
errors all come back at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from govkit.auth.roles import Permission
from govkit.db import new_id, utcnow
from govkit.errors import DomainError
from services.blocks import geo, importfiles
from services.blocks.domain import Access
from services.blocks.importfiles import Checker, RowError
from services.blocks.models import Building, Household, Node, Resident

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


# ---------------------------------------------------------------------- the tree, from whole files


async def apply_nodes(
    session: AsyncSession, access: Access, rows: list[importfiles.NodeRow]
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


async def apply_boundaries(
    session: AsyncSession, access: Access, rows: list[importfiles.BoundaryRow]
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


# ---------------------------------------------------------------------- large files, chunk by chunk


class RowWriter:
    """Checks and writes one file's rows a chunk at a time; `write=False` checks only."""

    def __init__(self, session: AsyncSession, access: Access, check: Checker, *, write: bool) -> None:
        self.session = session
        self.access = access
        self.check = check
        self.write = write
        self.counts = Counts()
        self._blocks: set[str] = set()
        self._editable: dict[str, bool] = {}

    @property
    def writing(self) -> bool:
        """Still writing: asked to, and no error anywhere in the file so far."""
        return self.write and not self.check.count

    async def start(self) -> None:
        """What every chunk is checked against: the active blocks (hundreds to tens of thousands)."""
        self._blocks = set(
            (
                await self.session.scalars(
                    select(Node.path).where(Node.kind == "block", Node.state == "active")
                )
            ).all()
        )

    def _block_ok(self, line: int, block_path: str, field: str = "block_path") -> bool:
        if block_path not in self._blocks:
            self.check.fail(field, f"{block_path} is not an active block", line)
            return False
        return self._may_edit(line, block_path, field)

    def _may_edit(self, line: int, block_path: str, field: str) -> bool:
        if not self._editable.setdefault(block_path, self.access.can_edit(block_path)):
            self.check.fail(field, NOT_PERMITTED_BLOCK, line)
            return False
        return True

    async def add(self, rows: Sequence[Any]) -> None:
        raise NotImplementedError

    async def _save(self, model: type, new: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
        """Counted whether written or not (validate_only reports what an import would do)."""
        self.counts.created += len(new)
        self.counts.updated += len(changed)
        if not self.writing:
            return
        if new:
            await self.session.execute(insert(model).execution_options(**BULK_INSERT), new)
        if changed:
            await self.session.execute(update(model), changed)


PAD_STEP = 512


def padded(values: Iterable[str]) -> list[str]:
    """The distinct values, the last repeated up to a power of two below PAD_STEP and a multiple of
    it above. An IN list of any length then compiles to one of a few dozen statements, so the
    drivers' caches of prepared statements (128 per connection for sqlite3, 100 for asyncpg) do
    not fill with a hundred different statements of thousands of parameters each: that cost a
    residents import ~55 MiB."""
    out = list(dict.fromkeys(values))
    if out:
        size = len(out)
        target = 1 << (size - 1).bit_length() if size <= PAD_STEP else -(-size // PAD_STEP) * PAD_STEP
        out += [out[-1]] * (target - size)
    return out


def _first_time(seen: set[Any], key: Any) -> bool:
    """False for a key seen before in this chunk: the file check reports the repeat, and writing it
    twice would break a unique constraint before that report."""
    if key in seen:
        return False
    seen.add(key)
    return True


class BuildingWriter(RowWriter):
    async def add(self, rows: Sequence[importfiles.BuildingRow]) -> None:
        self.counts.rows += len(rows)
        blocks = {r.block_path for r in rows}
        existing = {
            (b.block_path, b.code): b
            for b in await self.session.execute(
                select(
                    Building.id, Building.block_path, Building.code, Building.display_name, Building.address
                ).where(Building.block_path.in_(padded(blocks)))
            )
        }
        new, changed, seen = [], [], set()
        for row in rows:
            key = (row.block_path, row.code)
            if not self._block_ok(row.line, row.block_path) or not _first_time(seen, key):
                continue
            values = {"display_name": row.name, "address": row.address}
            found = existing.get(key)
            if found is None:
                new.append({"id": new_id(), "block_path": row.block_path, "code": row.code, **values})
            elif (found.display_name, found.address) != (row.name, row.address):
                changed.append({"id": found.id, **values})
            else:
                self.counts.unchanged += 1
        await self._save(Building, new, changed)


class HouseholdWriter(RowWriter):
    async def add(self, rows: Sequence[importfiles.HouseholdRow]) -> None:
        self.counts.rows += len(rows)
        blocks = {r.block_path for r in rows}
        buildings = set(
            (
                await self.session.execute(
                    select(Building.block_path, Building.code).where(Building.block_path.in_(padded(blocks)))
                )
            )
            .tuples()
            .all()
        )
        existing = {
            r.code: r
            for r in await self.session.execute(
                select(
                    Household.id,
                    Household.code,
                    Household.block_path,
                    Household.building_code,
                    Household.address,
                    Household.tags,
                ).where(Household.code.in_(padded(r.code for r in rows)))
            )
        }
        new, changed, seen, now = [], [], set(), utcnow()
        for row in rows:
            if not self._block_ok(row.line, row.block_path) or not _first_time(seen, row.code):
                continue
            if row.building_code and (row.block_path, row.building_code) not in buildings:
                self.check.fail(
                    "building_code", f"no building {row.building_code} in {row.block_path}", row.line
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
                self.counts.unchanged += 1
        await self._save(Household, new, changed)


class ResidentWriter(RowWriter):
    async def start(self) -> None:
        """Residents are checked through their household's block, read with each chunk."""

    async def add(self, rows: Sequence[importfiles.ResidentRow]) -> None:
        self.counts.rows += len(rows)
        households = {
            code: (hid, block)
            for hid, code, block in await self.session.execute(
                select(Household.id, Household.code, Household.block_path).where(
                    Household.code.in_(padded(r.household_code for r in rows))
                )
            )
        }
        existing = {
            (r.household_id, r.display_name): r
            for r in await self.session.execute(
                select(
                    Resident.id,
                    Resident.household_id,
                    Resident.display_name,
                    Resident.relation,
                    Resident.phone,
                    Resident.birth_year,
                    Resident.id_suffix,
                ).where(Resident.household_id.in_(padded(hid for hid, _ in households.values())))
            )
        }
        new, changed, seen = [], [], set()
        for row in rows:
            target = households.get(row.household_code)
            if target is None:
                message = f"no household {row.household_code}; import households first"
                self.check.fail("household_code", message, row.line)
                continue
            hid, block = target
            if not self._may_edit(row.line, block, "household_code") or not _first_time(
                seen, (hid, row.name)
            ):
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
                self.counts.unchanged += 1
        await self._save(Resident, new, changed)


WRITERS: dict[str, type[RowWriter]] = {
    "buildings": BuildingWriter,
    "households": HouseholdWriter,
    "residents": ResidentWriter,
}
ROWS = {
    "buildings": importfiles.iter_buildings,
    "households": importfiles.iter_households,
    "residents": importfiles.iter_residents,
}


def chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
