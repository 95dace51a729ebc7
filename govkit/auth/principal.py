"""The verified caller of a request and the scope checks made against it."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from govkit.auth.roles import ROLE_PERMISSIONS, Permission, Role
from govkit.auth.scopes import covers
from govkit.errors import PermissionDenied, Unauthenticated


@dataclass(frozen=True)
class Binding:
    role: Role
    scope: str


@dataclass(frozen=True)
class Principal:
    # `users/{id}` or `serviceAccounts/{id}`.
    subject: str
    bindings: tuple[Binding, ...]
    token_id: str = ""
    # The verified bearer token itself, for calls made on the caller's behalf to other services.
    token: str = field(default="", repr=False, compare=False)
    # The login session the token belongs to (`sid`; empty for service tokens) and when it was
    # issued (`iat`, to the millisecond): what a revocation is matched against.
    session_id: str = ""
    issued_at: float = 0.0

    @property
    def is_user(self) -> bool:
        return self.subject.startswith("users/")

    @property
    def user_id(self) -> str | None:
        return self.subject.removeprefix("users/") if self.is_user else None

    def scopes_for(self, permission: Permission) -> list[str]:
        return [b.scope for b in self.bindings if permission in ROLE_PERMISSIONS[b.role]]

    def can(self, permission: Permission, path: str) -> bool:
        return any(covers(scope, path) for scope in self.scopes_for(permission))

    def require(self, permission: Permission, path: str) -> None:
        if not self.can(permission, path):
            raise PermissionDenied(f"{permission} is not granted to the caller for '{path}'")

    def has_role(self, role: Role, path: str | None = None) -> bool:
        return any(b.role == role and (path is None or covers(b.scope, path)) for b in self.bindings)


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("gov_principal", default=None)


def current_principal() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def optional_principal() -> Principal | None:
    return _current.get()


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)
