"""Identity's data access. Functions take the caller's session so flows own the transaction."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Sequence
from typing import cast

from sqlalchemy import (
    SQLColumnExpression,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from govkit.auth.principal import Binding
from govkit.auth.roles import Role
from govkit.auth.scopes import GLOBAL
from govkit.db import rowcount
from govkit.hotreads import HotRead, Reader, split_joined
from services.identity.models import LoginAttempts, RefreshToken, RoleBinding, ServiceAccount, User


def _within(column: SQLColumnExpression[str], scope: str) -> ColumnElement[bool]:
    """SQL for "column is `scope` or below it"."""
    if scope == GLOBAL:
        return true()
    return or_(column == scope, column.startswith(scope + "/", autoescape=True))


async def user_by_login(session: AsyncSession, phone: str | None, username: str | None) -> User | None:
    if phone:
        return await session.scalar(select(User).where(User.phone == phone))
    if username:
        return await session.scalar(select(User).where(User.username == username))
    return None


# The hot reads (GetCaller on every /me, GetUser for every service that checks a user) as Core
# statements built once: no session, identity map or instance loading, which took more of
# identity's CPU than the database round trips (bench/README.md, ceiling). The rows they return
# carry the mapped classes' attribute names, which is all the converters read; they are read-only.
_users = User.__table__.c
_USER_BY_ID = select(
    _users.id,
    _users.phone,
    _users.username,
    _users.display_name,
    _users.scope,
    _users.state,
    _users.create_time,
    _users.update_time,
).where(_users.id == bindparam("id"))
_bindings = RoleBinding.__table__.c
_BINDINGS_OF = (
    select(RoleBinding.__table__)
    .where(_bindings.principal == bindparam("principal"))
    .order_by(_bindings.create_time)
)


async def user_view(conn: AsyncConnection, user_id: str) -> User | None:
    """A user as a read-only row, without the password hash (see _USER_BY_ID)."""
    row = (await conn.execute(_USER_BY_ID, {"id": user_id})).first()
    return cast(User | None, row)


async def binding_views(conn: AsyncConnection, principal: str) -> list[RoleBinding]:
    """The principal's role bindings as read-only rows, oldest first."""
    rows = (await conn.execute(_BINDINGS_OF, {"principal": principal})).all()
    return cast(list[RoleBinding], rows)


# GetCaller's user and bindings in one statement (one round trip, one execution through Core): a
# one-row anchor left-joined to the user and to each binding, so either may be missing. Every row
# repeats the user; a row without a binding (none at all) has its binding columns null.
_BINDING_COLUMNS = tuple(_bindings)
_one = select(literal_column("1").label("one")).subquery("one")
_CALLER = HotRead(
    select(*_USER_BY_ID.selected_columns, *(c.label(f"binding_{c.name}") for c in _BINDING_COLUMNS))
    .select_from(_one)
    .outerjoin(User.__table__, _users.id == bindparam("id"))
    .outerjoin(RoleBinding.__table__, _bindings.principal == bindparam("principal"))
    .order_by(_bindings.create_time)
)
_USER_WIDTH = len(_USER_BY_ID.selected_columns)
_UserRow = namedtuple("_UserRow", [c.name for c in _USER_BY_ID.selected_columns])  # type: ignore[misc]  # names from the table
_BindingRow = namedtuple("_BindingRow", [c.name for c in _BINDING_COLUMNS])  # type: ignore[misc]  # same


async def caller_views(reads: Reader, user_id: str, principal: str) -> tuple[User | None, list[RoleBinding]]:
    """What user_view and binding_views read, in one statement: the user (None if there is no such
    user) and the principal's bindings, oldest first; read-only rows with the same attribute names."""
    rows = await reads.all(_CALLER, id=user_id, principal=principal)
    user, bindings = split_joined(rows, _USER_WIDTH, _UserRow, _BindingRow)
    return cast(User | None, user), cast(list[RoleBinding], bindings)


async def bindings_of(session: AsyncSession, principal: str) -> list[RoleBinding]:
    return list(
        (
            await session.scalars(
                select(RoleBinding)
                .where(RoleBinding.principal == principal)
                .order_by(RoleBinding.create_time)
            )
        ).all()
    )


def as_bindings(rows: Sequence[RoleBinding]) -> tuple[Binding, ...]:
    return tuple(Binding(Role(r.role), r.scope) for r in rows)


async def list_users(
    session: AsyncSession,
    *,
    visible_scopes: Sequence[str],
    scope: str | None,
    state: str | None,
    role: Role | None,
    query: str | None,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[User]:
    stmt = select(User).where(or_(*(_within(User.scope, s) for s in visible_scopes)))
    if scope:
        stmt = stmt.where(_within(User.scope, scope))
    if state:
        stmt = stmt.where(User.state == state)
    if role:
        stmt = stmt.where(
            exists().where(RoleBinding.principal == "users/" + User.id, RoleBinding.role == role.value)
        )
    if query:
        stmt = stmt.where(
            or_(
                User.phone.contains(query, autoescape=True),
                func.lower(User.username).contains(query.lower(), autoescape=True),
                func.lower(User.display_name).contains(query.lower(), autoescape=True),
            )
        )
    if after:
        t, uid = after
        stmt = stmt.where(or_(User.create_time > t, and_(User.create_time == t, User.id > uid)))
    stmt = stmt.order_by(User.create_time, User.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def list_bindings(
    session: AsyncSession,
    *,
    principal: str | None,
    visible_scopes: Sequence[str] | None,
    scope: str | None,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[RoleBinding]:
    stmt = select(RoleBinding)
    if principal:
        stmt = stmt.where(RoleBinding.principal == principal)
    if visible_scopes is not None:
        stmt = stmt.where(or_(*(_within(RoleBinding.scope, s) for s in visible_scopes)))
    if scope:
        stmt = stmt.where(_within(RoleBinding.scope, scope))
    if after:
        t, bid = after
        stmt = stmt.where(
            or_(RoleBinding.create_time > t, and_(RoleBinding.create_time == t, RoleBinding.id > bid))
        )
    stmt = stmt.order_by(RoleBinding.create_time, RoleBinding.id).limit(limit)
    return list((await session.scalars(stmt)).all())


async def list_service_accounts(
    session: AsyncSession, *, after: tuple[dt.datetime, str] | None, limit: int
) -> list[ServiceAccount]:
    stmt = select(ServiceAccount)
    if after:
        t, sid = after
        stmt = stmt.where(
            or_(
                ServiceAccount.create_time > t, and_(ServiceAccount.create_time == t, ServiceAccount.id > sid)
            )
        )
    return list(
        (
            await session.scalars(stmt.order_by(ServiceAccount.create_time, ServiceAccount.id).limit(limit))
        ).all()
    )


async def revoke_family(session: AsyncSession, family_id: str, now: dt.datetime) -> bool:
    """Revoke a session's refresh tokens; False if it was already revoked."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rowcount(result) > 0


async def revoke_principal_tokens(
    session: AsyncSession, principal: str, now: dt.datetime, *, except_family: str | None = None
) -> None:
    stmt = update(RefreshToken).where(RefreshToken.principal == principal, RefreshToken.revoked_at.is_(None))
    if except_family:
        stmt = stmt.where(RefreshToken.family_id != except_family)
    await session.execute(stmt.values(revoked_at=now))


async def mark_used(session: AsyncSession, token_id: str, now: dt.datetime) -> bool:
    """Spend a refresh token; False if someone spent it first (a concurrent reuse)."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return rowcount(result) == 1


async def attempts_for_update(
    session: AsyncSession, login_key: str, client: str, now: dt.datetime
) -> LoginAttempts:
    """The attempt counter of (login, client), created if missing and locked for this transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    while True:
        await session.execute(
            insert(LoginAttempts)
            .values(login_key=login_key, client=client, failures=0, last_attempt=now, locked_until=None)
            .on_conflict_do_nothing()
        )
        row = await session.get(
            LoginAttempts, (login_key, client), with_for_update=True, populate_existing=True
        )
        if row is not None:
            return row
        # A successful login deleted the row between the insert and the lock: insert again.


async def clear_attempts(session: AsyncSession, login_key: str, client: str) -> None:
    await session.execute(
        delete(LoginAttempts).where(LoginAttempts.login_key == login_key, LoginAttempts.client == client)
    )
