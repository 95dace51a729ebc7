"""Blocks' business logic: each use case one method and one transaction."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import cast

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from gov.identity.v1 import identity_pb2_grpc
from govkit import keyset, pagination, peers, treemoves, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import validate_path
from govkit.db import Database, new_id, utcnow
from govkit.emitter import Emitter
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from govkit.sqlpaths import within
from services.blocks import convert, domain, geo
from services.blocks.access import load_access
from services.blocks.models import (
    MOVES,
    Building,
    Household,
    NeighbourHousehold,
    Node,
    StaffAssignment,
    Visit,
    platform,
)


def node_path(name: str, field: str = "name") -> str:
    return validate_path(name.removeprefix("nodes/").strip("/"), field=field, allow_global=False)


async def staff_by_block(session: AsyncSession, path: str) -> tuple[list[str], dict[str, list[domain.Staff]]]:
    """The active blocks at or below `path`, and the staff of every block there (retired ones too)."""
    blocks = (
        await session.scalars(
            select(Node.path).where(Node.kind == "block", Node.state == "active", within(Node.path, path))
        )
    ).all()
    staff_rows = (
        await session.execute(
            select(StaffAssignment.block_path, StaffAssignment.user_id, StaffAssignment.role).where(
                within(StaffAssignment.block_path, path)
            )
        )
    ).all()
    by_block: dict[str, list[domain.Staff]] = {b: [] for b in blocks}
    for block_path, user_id, role in staff_rows:
        by_block.setdefault(block_path, []).append(domain.Staff(user_id, role))
    return list(blocks), by_block


class BlockIndexCache:
    """The spatial index of active block boundaries and those blocks' nodes, rebuilt when any node
    changed: LocateBlock answers from it without reading the database (it read the block's node on
    every call, most of the service's CPU for it).

    The index and the nodes are read together, so a located block is always the node as it was
    when its boundary was indexed. This replica's own changes invalidate it at once; another
    replica's are noticed by a cheap fingerprint query (how many blocks, the latest update of any
    node, which a move of a district or street is, and the tree's move count), made at most once
    per `check_every` seconds.
    """

    def __init__(self, db: Database, check_every: float = 2.0) -> None:
        self.db = db
        self.check_every = check_every
        self._index: geo.BlockIndex | None = None
        self._nodes: dict[str, Node] = {}
        self._fingerprint: tuple[object, ...] | None = None
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._checked = float("-inf")

    async def get(self) -> geo.BlockIndex:
        return (await self.snapshot())[0]

    async def snapshot(self) -> tuple[geo.BlockIndex, dict[str, Node]]:
        """The index and the indexed blocks' nodes (read-only rows, by path), built together."""
        if self._index is not None and time.monotonic() - self._checked < self.check_every:
            return self._index, self._nodes
        async with self._lock:
            async with self.db.sessions() as session:
                moves = select(func.coalesce(func.max(MOVES.table.c.seq), 0)).scalar_subquery()
                fingerprint: tuple[object, ...] = tuple(
                    (
                        await session.execute(
                            select(
                                func.count(case((Node.kind == "block", 1))), func.max(Node.update_time), moves
                            )
                        )
                    ).one()
                )
                if self._index is None or fingerprint != self._fingerprint:
                    rows = (
                        await session.execute(
                            select(Node.__table__).where(
                                Node.kind == "block", Node.state == "active", Node.boundary.is_not(None)
                            )
                        )
                    ).all()
                    # cast: the query keeps only rows that have a boundary; the rows have the
                    # mapped class's attribute names, all that convert.node reads.
                    nodes = {row.path: cast(Node, row) for row in rows}
                    blocks = [(path, geo.parse_boundary(cast(str, n.boundary))) for path, n in nodes.items()]
                    self._index = await asyncio.to_thread(geo.BlockIndex, blocks)
                    self._nodes = nodes
                    self._fingerprint = fingerprint
            self._checked = time.monotonic()
            assert self._index is not None
            return self._index, self._nodes


class BlocksFlows:
    def __init__(self, db: Database, identity: identity_pb2_grpc.IdentityServiceStub | None = None) -> None:
        self.db = db
        self.identity = identity
        self._emit = Emitter(platform.outbox)
        self.index = BlockIndexCache(db)

    async def _require_user(self, principal: Principal, user_id: str) -> None:
        if self.identity is not None:
            await peers.require_user(self.identity, principal, user_id, "assignment.user")

    # ------------------------------------------------------------------ helpers

    async def access(self, principal: Principal) -> domain.Access:
        return await load_access(self.db, principal)

    @staticmethod
    async def _node(session: AsyncSession, path: str, *, lock: bool = False) -> Node:
        stmt = select(Node).where(Node.path == path)
        node = await session.scalar(stmt.with_for_update() if lock else stmt)
        if node is None:
            raise NotFound(f"nodes/{path} not found")
        return node

    # ------------------------------------------------------------------ region tree

    async def create_node(
        self,
        principal: Principal,
        *,
        code: str,
        parent: str,
        kind_value: int,
        display_name: str,
        boundary: str,
    ) -> Node:
        kind = convert.enum_name(pb.NodeKind, "NODE_KIND", kind_value)
        if kind is None:
            raise InvalidArgument("is required", field="node.kind")
        code = code.strip()
        validate_path(code, field="node.code", allow_global=False)
        if "/" in code:
            raise InvalidArgument("is one level's code, without '/'", field="node.code")
        parent = parent.strip().removeprefix("nodes/")
        path = f"{parent}/{code}" if parent else code
        if parent:
            validate_path(parent, field="node.parent", allow_global=False)
        domain.check_kind(kind, path)
        name = validation.text(display_name, "node.display_name", max_len=64)
        geometry = geo.parse_boundary(boundary, field="node.boundary_geojson") if boundary.strip() else None
        principal.require(Permission.REGIONS_MANAGE, parent or path)
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                if parent:
                    parent_node = await self._node(session, parent)
                    if parent_node.state != "active":
                        raise FailedPrecondition(f"nodes/{parent} is retired")
                if await session.scalar(select(Node.id).where(Node.path == path)):
                    raise AlreadyExists(f"nodes/{path} already exists")
                node = Node(
                    id=new_id(),
                    path=path,
                    code=code,
                    parent_path=parent,
                    kind=kind,
                    display_name=name,
                    boundary=json.dumps(geo.to_geojson(geometry)) if geometry is not None else None,
                    state="active",
                    create_time=now,
                    update_time=now,
                )
                session.add(node)
                await session.flush()
                await self._emit(
                    session,
                    principal,
                    "blocks.v1.node.created",
                    events_pb2.NodeCreated(
                        node=convert.node(node), tree_version=await MOVES.version(session)
                    ),
                    f"nodes/{path}",
                )
        except IntegrityError:
            raise AlreadyExists(f"nodes/{path} already exists") from None
        self.index.invalidate()
        return node

    async def get_node(self, principal: Principal, path: str) -> Node:
        async with self.db.sessions() as session:
            return await self._node(session, path)

    async def list_nodes(
        self, principal: Principal, *, parent: str, page_size: int, page_token: str, include_retired: bool
    ) -> tuple[list[Node], str]:
        parent = parent.removeprefix("nodes/").strip("/")
        if parent:
            validate_path(parent, field="parent", allow_global=False)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("nodes", parent, include_retired)
        cursor = pagination.decode_token(page_token, fp, p=str)
        stmt = select(Node).where(Node.parent_path == parent)
        if not include_retired:
            stmt = stmt.where(Node.state == "active")
        rows, token = await keyset.ascending(self.db, stmt, Node.path, "p", cursor, size, fp)
        return rows, token

    async def update_node(self, principal: Principal, path: str, changes: dict[str, str]) -> Node:
        unknown = set(changes) - {"display_name", "boundary_geojson", "parent"}
        if unknown or not changes:
            raise InvalidArgument(
                "may name display_name, boundary_geojson and parent" if changes else "names no field",
                field="update_mask",
            )
        principal.require(Permission.REGIONS_MANAGE, path)
        name = (
            validation.text(changes["display_name"], "node.display_name", max_len=64)
            if "display_name" in changes
            else None
        )
        boundary: str | None = None
        if "boundary_geojson" in changes:
            raw = changes["boundary_geojson"].strip()
            boundary = (
                json.dumps(geo.to_geojson(geo.parse_boundary(raw, field="node.boundary_geojson")))
                if raw
                else ""
            )
        new_parent = None
        if "parent" in changes:
            new_parent = validate_path(
                changes["parent"].removeprefix("nodes/"), field="node.parent", allow_global=False
            )
            principal.require(Permission.REGIONS_MANAGE, new_parent)
        async with self.db.transaction() as session:
            if new_parent is not None:
                await treemoves.lock(session)  # moves are numbered one at a time
            node = await self._node(session, path, lock=True)
            changed: list[str] = []
            previous_path = ""
            if name is not None and name != node.display_name:
                node.display_name = name
                changed.append("display_name")
            if boundary is not None and (boundary or None) != node.boundary:
                node.boundary = boundary or None
                changed.append("boundary_geojson")
            if new_parent is not None and new_parent != node.parent_path:
                previous_path = node.path
                await self._move(session, node, new_parent)
                changed.append("parent")
            if changed:
                node.update_time = utcnow()
                await self._emit(
                    session,
                    principal,
                    "blocks.v1.node.changed",
                    events_pb2.NodeChanged(
                        node=convert.node(node),
                        changed_fields=changed,
                        previous_path=previous_path,
                        tree_version=await MOVES.version(session),  # a move's own number
                    ),
                    f"nodes/{node.path}",
                )
        self.index.invalidate()
        return node

    async def _move(self, session: AsyncSession, node: Node, new_parent: str) -> None:
        """Re-parent a node: codes stay, the paths of the node and everything below it change."""
        parent = await self._node(session, new_parent)
        if domain.DEPTH[parent.kind] != domain.DEPTH[node.kind] - 1:
            raise FailedPrecondition(
                f"a {node.kind} moves under a {domain.KINDS[domain.DEPTH[node.kind] - 2]}"
            )
        old, new = node.path, f"{new_parent}/{node.code}"
        if await session.scalar(select(Node.id).where(Node.path == new)):
            raise AlreadyExists(f"nodes/{new} already exists")
        for column in (
            Node.path,
            Node.parent_path,
            StaffAssignment.block_path,
            Household.block_path,
            Visit.block_path,
            Building.block_path,  # buildings of every block below, not only of a moved block
        ):
            await treemoves.rewrite(session, column, old, new)
        node.path, node.parent_path = new, new_parent
        # Numbered in this transaction, under treemoves.lock(): no gaps, no two moves alike.
        await MOVES.record(session, await MOVES.version(session) + 1, old, new, utcnow())

    async def retire_node(self, principal: Principal, path: str) -> Node:
        principal.require(Permission.REGIONS_MANAGE, path)
        async with self.db.transaction() as session:
            node = await self._node(session, path, lock=True)
            if node.state == "retired":
                return node
            children = await session.scalar(
                select(func.count()).where(Node.parent_path == path, Node.state == "active")
            )
            if children:
                raise FailedPrecondition(
                    f"nodes/{path} still has {children} active child nodes; retire or move them first"
                )
            node.state, node.update_time = "retired", utcnow()
            await self._emit(
                session,
                principal,
                "blocks.v1.node.retired",
                events_pb2.NodeRetired(node=convert.node(node), tree_version=await MOVES.version(session)),
                f"nodes/{path}",
            )
        self.index.invalidate()
        return node

    # ------------------------------------------------------------------ location and coverage

    async def locate(self, lat: float, lng: float) -> Node:
        geo.validate_point(lat, lng)
        index, nodes = await self.index.snapshot()
        path = index.locate(lat, lng)
        if path is None:
            raise NotFound("no block contains this point")
        return nodes[path]

    async def audit_coverage(
        self, principal: Principal, path: str
    ) -> tuple[Node, geo.CoverageReport, list[str], int]:
        principal.require(Permission.REGIONS_READ, path)
        async with self.db.sessions() as session:
            node = await self._node(session, path)
            rows = (
                await session.execute(
                    select(Node.path, Node.boundary).where(
                        Node.kind == "block", Node.state == "active", within(Node.path, path)
                    )
                )
            ).all()
        missing = [p for p, b in rows if not b]
        blocks = [(p, geo.parse_boundary(b)) for p, b in rows if b]
        parent = geo.parse_boundary(node.boundary) if node.boundary and node.kind != "block" else None
        report = await asyncio.to_thread(geo.audit_coverage, parent, blocks)
        return node, report, missing, len(rows)

    # ------------------------------------------------------------------ staffing (1+N+1)

    async def assign_staff(
        self,
        principal: Principal,
        *,
        block: str,
        user: str,
        role_value: int,
        kind_value: int,
        household_ids: Sequence[str],
        replace: bool,
    ) -> StaffAssignment:
        role = convert.enum_name(pb.StaffRole, "STAFF_ROLE", role_value)
        if role is None:
            raise InvalidArgument("is required", field="assignment.role")
        kind = convert.enum_name(pb.AssistantKind, "ASSISTANT_KIND", kind_value)
        if role == domain.ASSISTANT and kind is None:
            raise InvalidArgument("is required for assistants", field="assignment.assistant_kind")
        if role != domain.ASSISTANT and kind is not None:
            raise InvalidArgument("is only for assistants", field="assignment.assistant_kind")
        if household_ids and role != "neighbour_head":
            raise InvalidArgument("only neighbour heads keep households", field="assignment.household_ids")
        user_id = validation.resource_id(user, "users", field="assignment.user")
        block = node_path(block, field="assignment.block")
        principal.require(Permission.STAFF_ASSIGN, block)
        await self._require_user(principal, user_id)
        async with self.db.transaction() as session:
            node = await self._node(session, block, lock=True)  # serialises assignments per block
            if node.kind != "block" or node.state != "active":
                raise FailedPrecondition(f"nodes/{block} is not an active block")
            current = list(
                (
                    await session.scalars(select(StaffAssignment).where(StaffAssignment.block_path == block))
                ).all()
            )
            domain.check_assignment(
                [domain.Staff(s.user_id, s.role) for s in current],
                domain.Staff(user_id, role),
                replace=replace,
            )
            if replace and role in (domain.GOVERNOR, domain.SUPERVISOR):
                for old in [s for s in current if s.role == role]:
                    await self._remove(session, principal, old)
            if household_ids:
                found = await session.scalar(
                    select(func.count()).where(
                        Household.id.in_(list(household_ids)), Household.block_path == block
                    )
                )
                if found != len(set(household_ids)):
                    raise InvalidArgument(
                        "every household must belong to this block", field="assignment.household_ids"
                    )
            row = StaffAssignment(
                id=new_id(),
                block_path=block,
                user_id=user_id,
                role=role,
                assistant_kind=kind,
                create_time=utcnow(),
            )
            session.add(row)
            await session.flush()
            for hid in sorted(set(household_ids)):
                session.add(NeighbourHousehold(assignment_id=row.id, household_id=hid))
            await self._emit(
                session,
                principal,
                "blocks.v1.staff.assigned",
                events_pb2.StaffAssigned(
                    assignment=convert.staff(row, list(household_ids)),
                    tree_version=await MOVES.version(session),
                ),
                f"nodes/{block}/staff/{row.id}",
            )
            return row

    async def _remove(self, session: AsyncSession, principal: Principal, row: StaffAssignment) -> None:
        await session.delete(row)
        await self._emit(
            session,
            principal,
            "blocks.v1.staff.removed",
            events_pb2.StaffRemoved(assignment=convert.staff(row), tree_version=await MOVES.version(session)),
            f"nodes/{row.block_path}/staff/{row.id}",
        )

    async def remove_staff(self, principal: Principal, name: str) -> None:
        block, sep, assignment_id = name.removeprefix("nodes/").rpartition("/staff/")
        if not sep or not assignment_id:
            raise InvalidArgument("must be 'nodes/{block}/staff/{id}'", field="name")
        async with self.db.transaction() as session:
            row = await session.get(StaffAssignment, assignment_id, with_for_update=True)
            if row is None or row.block_path != block:
                raise NotFound(f"{name} not found")
            principal.require(Permission.STAFF_ASSIGN, row.block_path)
            await self._remove(session, principal, row)

    async def list_staff(
        self, principal: Principal, *, node: str, user: str, page_size: int, page_token: str
    ) -> tuple[list[StaffAssignment], str]:
        path = node_path(node, field="node")
        user_id = validation.resource_id(user, "users", field="user") if user else None
        access = await self.access(principal)
        access.require_read(path, Permission.REGIONS_READ)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("staff", path, user_id)
        cursor = pagination.decode_token(page_token, fp, b=str, i=str)
        stmt = select(StaffAssignment).where(within(StaffAssignment.block_path, path))
        if user_id:
            stmt = stmt.where(StaffAssignment.user_id == user_id)
        if cursor:
            stmt = stmt.where(
                or_(
                    StaffAssignment.block_path > cursor["b"],
                    and_(StaffAssignment.block_path == cursor["b"], StaffAssignment.id > cursor["i"]),
                )
            )
        async with self.db.sessions() as session:
            rows = list(
                (
                    await session.scalars(
                        stmt.order_by(StaffAssignment.block_path, StaffAssignment.id).limit(size + 1)
                    )
                ).all()
            )
        rows, token = pagination.cut(rows, size, fp, lambda r: {"b": r.block_path, "i": r.id})
        return rows, token

    async def audit_staffing(self, principal: Principal, path: str) -> tuple[int, int, list[tuple[str, str]]]:
        access = await self.access(principal)
        access.require_read(path, Permission.REGIONS_READ)
        async with self.db.sessions() as session:
            blocks, by_block = await staff_by_block(session, path)
        violations = [(b, rule) for b in sorted(blocks) for rule in domain.staffing_violations(by_block[b])]
        complete = len(blocks) - len({b for b, _ in violations})
        return len(blocks), complete, violations
