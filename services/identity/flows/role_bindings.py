"""Role bindings: grant, list and revoke roles at a scope of the region tree."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Role
from govkit.auth.scopes import GLOBAL, validate_path
from govkit.db import new_id, utcnow
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.identity import convert, domain, repository
from services.identity.flows.common import FlowBase, time_cursor
from services.identity.models import RoleBinding, ServiceAccount, User


class RoleBindingFlows(FlowBase):
    async def _principal_exists(self, session: AsyncSession, principal: str) -> bool:
        if principal.startswith("users/"):
            return await session.get(User, principal.removeprefix("users/")) is not None
        if principal.startswith("serviceAccounts/"):
            return await session.get(ServiceAccount, principal.removeprefix("serviceAccounts/")) is not None
        return False

    async def grant(self, principal: Principal, target: str, role_value: int, scope: str) -> RoleBinding:
        if not target.startswith(("users/", "serviceAccounts/")):
            raise InvalidArgument("must be 'users/{id}' or 'serviceAccounts/{id}'", field="parent")
        role = convert.role_from_pb(role_value)
        if role is None:
            raise InvalidArgument("is required", field="role_binding.role")
        scope_n = validate_path(scope.strip(), field="role_binding.scope")
        authority = domain.require_grant(principal, role, scope_n)
        try:
            async with self.db.transaction() as session:
                if not await self._principal_exists(session, target):
                    raise NotFound(f"{target} not found")
                existing = await session.scalar(
                    select(RoleBinding).where(
                        RoleBinding.principal == target,
                        RoleBinding.role == role.value,
                        RoleBinding.scope == scope_n,
                    )
                )
                if existing:
                    raise AlreadyExists(f"{target} already has {role.value} at {scope_n}")
                binding = RoleBinding(
                    id=new_id(),
                    principal=target,
                    role=role.value,
                    scope=scope_n,
                    granted_by=principal.subject,
                    create_time=utcnow(),
                )
                session.add(binding)
                await session.flush()
                await self._emit(
                    session,
                    principal,
                    "identity.v1.role.granted",
                    events_pb2.RoleGranted(
                        role_binding=convert.role_binding(binding),
                        granter_role=convert.role_to_pb(authority.role),
                        granter_scope=authority.scope,
                    ),
                    f"{target}/roleBindings/{binding.id}",
                )
                return binding
        except IntegrityError:
            raise AlreadyExists(f"{target} already has {role.value} at {scope_n}") from None

    async def list_bindings(
        self, principal: Principal, *, parent: str, scope: str, page_size: int, page_token: str
    ) -> tuple[list[RoleBinding], str]:
        scope_f = validate_path(scope, field="scope") if scope else None
        own = parent and parent == principal.subject
        visible: list[str] | None = None if own else domain.readable_scopes(principal)
        if visible is not None and not visible:
            raise PermissionDenied("the caller may not list role bindings")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint(principal.subject, parent, scope_f)
        cursor = pagination.decode_token(page_token, fp, t=dt.datetime, id=str)
        after = (cursor["t"], cursor["id"]) if cursor else None
        async with self.db.sessions() as session:
            rows = await repository.list_bindings(
                session,
                principal=parent or None,
                visible_scopes=visible,
                scope=scope_f,
                after=after,
                limit=size + 1,
            )
        rows, next_token = pagination.cut(rows, size, fp, time_cursor)
        return rows, next_token

    async def revoke(self, principal: Principal, binding_id: str, owner: str | None = None) -> None:
        async with self.db.transaction() as session:
            binding = await session.get(RoleBinding, binding_id, with_for_update=True)
            if binding is None or (owner is not None and binding.principal != owner):
                raise NotFound(f"roleBindings/{binding_id} not found")
            domain.require_grant(principal, Role(binding.role), binding.scope)
            if binding.role == Role.ADMIN and binding.scope == GLOBAL:
                remaining = await session.scalar(
                    select(RoleBinding.id).where(
                        RoleBinding.role == Role.ADMIN.value,
                        RoleBinding.scope == GLOBAL,
                        RoleBinding.id != binding.id,
                    )
                )
                if remaining is None:
                    raise FailedPrecondition("cannot revoke the last global admin binding")
            await session.delete(binding)
            await self._emit(
                session,
                principal,
                "identity.v1.role.revoked",
                events_pb2.RoleRevoked(role_binding=convert.role_binding(binding)),
                f"{binding.principal}/roleBindings/{binding.id}",
            )
