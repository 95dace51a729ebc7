"""Roles and the permissions they carry: one table for every service.

Who may grant which role is identity's business: see `DELEGATION` in services/identity/domain.py.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LEADER = "leader"
    DISPATCHER = "dispatcher"
    UNIT_STAFF = "unit_staff"
    GOVERNOR = "governor"
    ASSISTANT = "assistant"
    SUPERVISOR = "supervisor"
    RESIDENT = "resident"


class Permission(StrEnum):
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    ROLES_GRANT = "roles.grant"
    SERVICE_ACCOUNTS_MANAGE = "service_accounts.manage"
    SIGNING_KEYS_ROTATE = "signing_keys.rotate"
    # blocks
    REGIONS_READ = "regions.read"
    REGIONS_MANAGE = "regions.manage"
    STAFF_ASSIGN = "staff.assign"
    HOUSEHOLDS_READ = "households.read"
    HOUSEHOLDS_WRITE = "households.write"
    # tickets
    TICKETS_CONFIGURE = "tickets.configure"  # categories, the working calendar, units
    UNITS_STAFF = "units.staff"  # who staffs a unit
    # points
    POINTS_CONFIGURE = "points.configure"  # indicators, exchange points and their items
    # notifications: delivery records, group robots, message templates
    NOTIFICATIONS_MANAGE = "notifications.manage"
    # targeted notices to the residents of a node (block governors and assistants send to their
    # own block through blocks' staffing records instead)
    NOTIFICATIONS_SEND = "notifications.send"


_STAFF_ADMIN = frozenset({Permission.USERS_READ, Permission.USERS_WRITE, Permission.ROLES_GRANT})

# Block staff (governor, assistants, supervisor) get their block rights from the blocks service's
# live staffing records, not from here: removal must bite on the next call, not when a token expires.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    # A leader reads the whole district and shapes its tree; households are read-only for them.
    Role.LEADER: _STAFF_ADMIN
    | {
        Permission.REGIONS_READ,
        Permission.REGIONS_MANAGE,
        Permission.STAFF_ASSIGN,
        Permission.HOUSEHOLDS_READ,
        Permission.TICKETS_CONFIGURE,
        Permission.UNITS_STAFF,
        Permission.POINTS_CONFIGURE,
        Permission.NOTIFICATIONS_MANAGE,
        Permission.NOTIFICATIONS_SEND,
    },
    Role.DISPATCHER: _STAFF_ADMIN
    | {
        Permission.NOTIFICATIONS_SEND,
        Permission.REGIONS_READ,
        Permission.STAFF_ASSIGN,
        Permission.HOUSEHOLDS_READ,
        Permission.HOUSEHOLDS_WRITE,
        Permission.UNITS_STAFF,
    },
    Role.UNIT_STAFF: frozenset({Permission.REGIONS_READ}),
    Role.GOVERNOR: frozenset(),
    Role.ASSISTANT: frozenset(),
    Role.SUPERVISOR: frozenset(),
    Role.RESIDENT: frozenset(),
}
