"""Identity rules as plain Python: logins, passwords, lockout and who may manage whom."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from govkit import validation
from govkit.auth.logins import login_key as login_key  # re-exported for flows and tests
from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import GLOBAL, covers, validate_path
from govkit.errors import InvalidArgument, PermissionDenied
from govkit.validation import normalize_phone as normalize_phone  # re-exported

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")

PASSWORD_MIN = 8
PASSWORD_MAX = 128


def normalize_username(raw: str, field: str = "username") -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if not _USERNAME.match(value):
        raise InvalidArgument("must be 3-32 of a-z, 0-9, '_', '.', '-', starting with a letter", field=field)
    return value


def check_password(password: str, field: str = "password") -> str:
    if len(password) < PASSWORD_MIN:
        raise InvalidArgument(f"must be at least {PASSWORD_MIN} characters", field=field)
    if len(password) > PASSWORD_MAX:
        raise InvalidArgument(f"must be at most {PASSWORD_MAX} characters", field=field)
    if password.strip() == "":
        raise InvalidArgument("must not be blank", field=field)
    return password


def display_name(raw: str) -> str:
    return validation.text(raw, "display_name", max_len=64)


def user_scope(raw: str, principal: Principal) -> str:
    scope = validate_path(raw.strip(), field="scope")
    if scope == GLOBAL and not principal.has_role(Role.ADMIN, GLOBAL):
        raise PermissionDenied("only a global admin may create accounts at the global scope")
    return scope


# ----------------------------------------------------------------- lockout

# Beyond this many doublings the delay is at its cap anyway; keeps 2**n small.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class LockoutPolicy:
    """A growing delay per login and client address, never a lock on the login alone.

    The first `threshold` failures from one address cost nothing; the next attempt from there
    waits `duration`, and each further failure doubles the wait up to `max_delay`. After a quiet
    `window` (no attempt once the wait is over) the count starts again.
    """

    threshold: int
    window: dt.timedelta
    duration: dt.timedelta
    max_delay: dt.timedelta = dt.timedelta(minutes=15)

    def delay_after(self, failures: int) -> dt.timedelta:
        if failures < self.threshold:
            return dt.timedelta(0)
        doublings = min(failures - self.threshold, _MAX_DOUBLINGS)
        factor: int = 2**doublings  # typeshed types int ** int as Any (a negative power is a float)
        return min(self.max_delay, self.duration * factor)


@dataclass
class AttemptState:
    failures: int
    # When the last attempt was counted.
    last_attempt: dt.datetime
    locked_until: dt.datetime | None


def is_locked(state: AttemptState | None, now: dt.datetime) -> dt.datetime | None:
    if state and state.locked_until and state.locked_until > now:
        return state.locked_until
    return None


def record_failure(state: AttemptState | None, now: dt.datetime, policy: LockoutPolicy) -> AttemptState:
    """Count an attempt as failed; the wait it earns applies to the next one.

    Identity counts each attempt before checking its password (a success then clears the
    count), so concurrent guesses cannot all slip in under one reading of the count.
    """
    if state is not None and now - (state.locked_until or state.last_attempt) < policy.window:
        failures = state.failures + 1
    else:
        failures = 1
    delay = policy.delay_after(failures)
    return AttemptState(failures=failures, last_attempt=now, locked_until=now + delay if delay else None)


# ----------------------------------------------------------------- delegation

# How strong each role is. An account may be managed (password reset, disabled, moved) only by
# someone holding a stronger role over the scope of each of its bindings.
RANK: dict[Role, int] = {
    Role.ADMIN: 100,
    Role.LEADER: 80,
    Role.DISPATCHER: 60,
    Role.UNIT_STAFF: 40,
    Role.GOVERNOR: 40,
    Role.SUPERVISOR: 40,
    Role.ASSISTANT: 30,
    Role.RESIDENT: 10,
}

WITHIN = "within"  # the granted scope is the granter's binding scope or below it
GLOBAL_ONLY = "global"  # the granter's binding must be the global scope '*'


@dataclass(frozen=True)
class DelegationRule:
    granter: Role
    scope: str  # WITHIN or GLOBAL_ONLY
    grants: frozenset[Role]
    why: str


# Who may grant what: the whole rule. A role not listed grants nothing. Nobody grants a role equal
# to or above their own, except the one row that says so. Block staff (governor, assistants,
# supervisor) are bound by the blocks service's staffing records (identity mirrors them from
# `blocks.v1.staff.*` events), so only an admin binds them by hand, to repair a record.
DELEGATION: tuple[DelegationRule, ...] = (
    DelegationRule(Role.ADMIN, GLOBAL_ONLY, frozenset({Role.ADMIN}), "only a global admin appoints admins"),
    DelegationRule(Role.ADMIN, WITHIN, frozenset(Role) - {Role.ADMIN}, "admins bind every other role"),
    DelegationRule(
        Role.LEADER,
        WITHIN,
        frozenset({Role.DISPATCHER, Role.UNIT_STAFF, Role.RESIDENT}),
        "leaders staff their district's or street's hub and units",
    ),
    DelegationRule(
        Role.DISPATCHER,
        WITHIN,
        frozenset({Role.UNIT_STAFF, Role.RESIDENT}),
        "dispatchers register unit staff and residents of their street",
    ),
)


def _rule_allows(rule: DelegationRule, binding: Binding, role: Role, scope: str) -> bool:
    if rule.granter != binding.role or role not in rule.grants:
        return False
    if rule.scope == GLOBAL_ONLY:
        return binding.scope == GLOBAL
    return covers(binding.scope, scope)


def grant_authority(principal: Principal, role: Role, scope: str) -> Binding | None:
    """The caller's binding under which they may grant `role` at `scope`, or None."""
    for binding in principal.bindings:
        if any(_rule_allows(rule, binding, role, scope) for rule in DELEGATION):
            return binding
    return None


def require_grant(principal: Principal, role: Role, scope: str) -> Binding:
    authority = grant_authority(principal, role, scope)
    if authority is None:
        raise PermissionDenied(f"the caller may not grant '{role}' at '{scope}'")
    return authority


def _outranks(principal: Principal, target: Binding) -> bool:
    if principal.has_role(Role.ADMIN, GLOBAL):
        return True
    return any(RANK[b.role] > RANK[target.role] and covers(b.scope, target.scope) for b in principal.bindings)


def can_manage(principal: Principal, target_scope: str, target_bindings: Iterable[Binding]) -> bool:
    """May `principal` change an account: its scope is covered and they outrank each of its roles.

    Without the second half a street dispatcher could reset a district leader's password
    and log in as them.
    """
    if not principal.can(Permission.USERS_WRITE, target_scope):
        return False
    return all(_outranks(principal, b) for b in target_bindings)


def require_manage(principal: Principal, target_scope: str, target_bindings: Iterable[Binding]) -> None:
    if not can_manage(principal, target_scope, target_bindings):
        raise PermissionDenied("the caller's scope and roles do not cover this account")


def can_read_user(principal: Principal, user_id: str, user_scope: str) -> bool:
    return principal.user_id == user_id or principal.can(Permission.USERS_READ, user_scope)


def readable_scopes(principal: Principal) -> list[str]:
    """Scopes whose users the principal may list; minimal (no scope inside another)."""
    scopes = sorted(set(principal.scopes_for(Permission.USERS_READ)), key=len)
    minimal: list[str] = []
    for scope in scopes:
        if not any(covers(kept, scope) for kept in minimal):
            minimal.append(scope)
    return minimal
