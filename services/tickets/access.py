"""Who the caller is to a ticket: the roles they can act in, and what they may see.

Roles come from the caller's verified token (leader, dispatcher, block staff) and from the
units they staff, read from this service's own table on every call, so removing someone from a
unit bites on their next call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

from govkit.auth.principal import Principal
from govkit.auth.roles import Role
from govkit.auth.scopes import covers
from govkit.sqlpaths import within
from services.tickets.lifecycle import Actor
from services.tickets.models import Ticket, TicketUnit

# Token roles and the lifecycle role each acts in. An admin acts as a leader everywhere.
_ACTING_ROLES = {
    Role.ADMIN: "leader",
    Role.LEADER: "leader",
    Role.DISPATCHER: "dispatcher",
    Role.GOVERNOR: "governor",
    Role.ASSISTANT: "assistant",
    Role.SUPERVISOR: "supervisor",
}
# Roles that see every ticket at or below their scope.
_SEEING_ROLES = frozenset(_ACTING_ROLES)
_DISPATCHING = frozenset({Role.ADMIN, Role.LEADER, Role.DISPATCHER})
_STAFF = _SEEING_ROLES


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    units: Mapping[str, str]  # unit code -> the node it serves

    @property
    def subject(self) -> str:
        return self.principal.subject

    @property
    def scopes(self) -> list[str]:
        return sorted({b.scope for b in self.principal.bindings if b.role in _SEEING_ROLES})

    def is_staff_for(self, node: str) -> bool:
        """Staff whose role covers the node (patrols, visits, recording a phone rating ...)."""
        return any(b.role in _STAFF and covers(b.scope, node) for b in self.principal.bindings)

    def dispatches_for(self, node: str) -> bool:
        return any(b.role in _DISPATCHING and covers(b.scope, node) for b in self.principal.bindings)

    def can_see(self, ticket: Ticket, units: Sequence[str]) -> bool:
        return (
            ticket.reporter == self.subject
            or any(covers(scope, ticket.node) for scope in self.scopes)
            or any(u in self.units for u in units)
        )

    def visible(self) -> ColumnElement[bool]:
        """SQL for "tickets this caller may see"."""
        conditions = [Ticket.reporter == self.subject]
        conditions += [within(Ticket.node, scope) for scope in self.scopes]
        if self.units:
            conditions.append(
                Ticket.id.in_(select(TicketUnit.ticket_id).where(TicketUnit.unit.in_(sorted(self.units))))
            )
        return or_(*conditions)

    def actors(self, unit: str = "") -> list[Actor]:
        """Every role the caller could be acting in; the lifecycle decides which one may."""
        result = [
            Actor(self.subject, _ACTING_ROLES[b.role], b.scope)
            for b in self.principal.bindings
            if b.role in _ACTING_ROLES
        ]
        result += [
            Actor(self.subject, "unit_staff", node, unit=code)
            for code, node in sorted(self.units.items())
            if not unit or code == unit
        ]
        result.append(Actor(self.subject, "resident"))
        return result
