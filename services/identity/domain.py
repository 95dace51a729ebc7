"""Identity rules as plain Python: logins, passwords, lockout and who may manage whom."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from govkit import validation
from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import GLOBAL, covers, validate_path
from govkit.errors import InvalidArgument, PermissionDenied
from govkit.validation import normalize_phone

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


def login_key(login: str) -> str:
    """The key failed attempts are counted under: the phone in E.164, else the lower-cased text."""
    try:
        return normalize_phone(login)
    except InvalidArgument:
        return login.strip().lower()[:100]


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


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int
    window: dt.timedelta
    duration: dt.timedelta


@dataclass
class AttemptState:
    failures: int
    window_start: dt.datetime
    locked_until: dt.datetime | None


def is_locked(state: AttemptState | None, now: dt.datetime) -> dt.datetime | None:
    if state and state.locked_until and state.locked_until > now:
        return state.locked_until
    return None


def record_failure(state: AttemptState | None, now: dt.datetime, policy: LockoutPolicy) -> AttemptState:
    """Count a failure; lock when `threshold` failures fall inside one window."""
    if (
        state is None
        or now - state.window_start > policy.window
        or (state.locked_until is not None and state.locked_until <= now)
    ):
        state = AttemptState(failures=0, window_start=now, locked_until=None)
    state.failures += 1
    if state.failures >= policy.threshold:
        state.locked_until = now + policy.duration
    return state


def can_manage(principal: Principal, target_scope: str, target_bindings: Iterable[Binding]) -> bool:
    """May `principal` change an account: its scope is covered and none of its roles outranks them.

    Without the second half a street dispatcher could reset a district leader's password
    and log in as them.
    """
    if not principal.can(Permission.USERS_WRITE, target_scope):
        return False
    return all(principal.can_grant(b.role, b.scope) for b in target_bindings)


def require_manage(principal: Principal, target_scope: str, target_bindings: Iterable[Binding]) -> None:
    if not can_manage(principal, target_scope, target_bindings):
        raise PermissionDenied("the caller's scope and roles do not cover this account")


def require_grant(principal: Principal, role: Role, scope: str) -> None:
    if not principal.can_grant(role, scope):
        raise PermissionDenied(f"the caller may not grant '{role}' at '{scope}'")


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
