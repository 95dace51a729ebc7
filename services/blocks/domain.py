"""Blocks rules as plain Python: the tree's levels, the 1+N+1 staffing rule, who may see what."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import covers
from govkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied

KINDS = ("district", "street", "community", "block")
DEPTH = {kind: i + 1 for i, kind in enumerate(KINDS)}

GOVERNOR, ASSISTANT, SUPERVISOR = "governor", "assistant", "supervisor"
THREE_HEADS = ("area_head", "group_leader", "neighbour_head")
STAFF_ROLES = (GOVERNOR, ASSISTANT, SUPERVISOR, *THREE_HEADS)
ASSISTANT_KINDS = (
    "liaison_cadre",
    "party_group_leader",
    "owners_committee_member",
    "resident_representative",
)
# Block staff who may edit the block's households and record visits; the supervisor watches.
BLOCK_EDITORS = frozenset({GOVERNOR, ASSISTANT, *THREE_HEADS})
BLOCK_READERS = frozenset(STAFF_ROLES)


def check_kind(kind: str, path: str) -> None:
    depth = path.count("/") + 1
    if DEPTH.get(kind) != depth:
        raise InvalidArgument(
            f"a {kind} sits at level {DEPTH.get(kind)}, this path is level {depth}", field="kind"
        )


@dataclass(frozen=True)
class Staff:
    user_id: str
    role: str


def check_assignment(existing: Iterable[Staff], new: Staff, *, replace: bool = False) -> None:
    """Refuse an assignment that would break 1+N+1; the FailedPrecondition names the rule."""
    current = [
        s for s in existing if not (replace and s.role == new.role and new.role in (GOVERNOR, SUPERVISOR))
    ]
    roles_of_user = {s.role for s in current if s.user_id == new.user_id}
    if new.role in roles_of_user:
        raise FailedPrecondition(f"the person already holds the {new.role} role on this block")
    if new.role in (GOVERNOR, SUPERVISOR) and any(s.role == new.role for s in current):
        raise FailedPrecondition(
            f"1+N+1: a block has exactly one {new.role}; remove the current one or pass replace=true"
        )
    if new.role == SUPERVISOR and roles_of_user & {GOVERNOR, ASSISTANT}:
        raise FailedPrecondition(
            "1+N+1: the supervisor cannot be the block's governor or one of its assistants"
        )
    if new.role in (GOVERNOR, ASSISTANT) and SUPERVISOR in roles_of_user:
        raise FailedPrecondition("1+N+1: the block's supervisor cannot also be its governor or an assistant")


def staffing_violations(staff: Iterable[Staff]) -> list[str]:
    """Rules a block's staffing breaks; empty means it meets 1+N+1."""
    staff = list(staff)
    out = []
    for role in (GOVERNOR, SUPERVISOR):
        n = sum(1 for s in staff if s.role == role)
        if n != 1:
            out.append(f"1+N+1: a block has exactly one {role} (found {n})")
    if not any(s.role == ASSISTANT for s in staff):
        out.append("1+N+1: a block has at least one assistant (found 0)")
    supervisors = {s.user_id for s in staff if s.role == SUPERVISOR}
    watched = {s.user_id for s in staff if s.role in (GOVERNOR, ASSISTANT)}
    if supervisors & watched:
        out.append("1+N+1: the supervisor cannot be the block's governor or one of its assistants")
    return out


@dataclass
class Access:
    """What one caller may do, from their token's scoped roles and their live block staffing."""

    principal: Principal
    staffed: dict[str, set[str]] = field(default_factory=dict)  # block path -> staff roles held now

    def _staff_can(self, path: str, roles: frozenset[str]) -> bool:
        return any(covers(block, path) and held & roles for block, held in self.staffed.items())

    def read_scopes(self, permission: Permission = Permission.HOUSEHOLDS_READ) -> list[str]:
        """Prefixes of everything this caller may read: token scopes plus the blocks they staff."""
        return [*self.principal.scopes_for(permission), *self.staffed.keys()]

    def can_read(self, path: str, permission: Permission = Permission.HOUSEHOLDS_READ) -> bool:
        return self.principal.can(permission, path) or self._staff_can(path, BLOCK_READERS)

    def can_edit(self, path: str) -> bool:
        return self.principal.can(Permission.HOUSEHOLDS_WRITE, path) or self._staff_can(path, BLOCK_EDITORS)

    def require_read(self, path: str, permission: Permission = Permission.HOUSEHOLDS_READ) -> None:
        if not self.can_read(path, permission):
            raise PermissionDenied(f"the caller's scope does not cover '{path}'")

    def require_edit(self, path: str) -> None:
        if not self.can_edit(path):
            raise PermissionDenied(f"the caller may not change '{path}'")
