"""Users: create, read, list, update, disable and enable, passwords, and the first admin."""

from __future__ import annotations

import datetime as dt

from google.protobuf.message import Message
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import GLOBAL, validate_path
from govkit.db import Database, get_row, new_id, utcnow
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.idempotency import Command, IdempotencyKeys
from services.identity import convert, domain, repository
from services.identity.flows.common import FlowBase, Passwords, time_cursor
from services.identity.models import LoginAttempts, RoleBinding, User, platform
from services.identity.settings import IdentitySettings


class UserFlows(FlowBase):
    def __init__(self, db: Database, settings: IdentitySettings, passwords: Passwords) -> None:
        super().__init__(db, settings, passwords)
        self.idempotency = IdempotencyKeys(db, platform.idempotency)

    async def caller(self, principal: Principal) -> tuple[User | None, list[RoleBinding]]:
        """Read live on every call (a disabled user or a revoked binding shows at once); the rows
        are read-only views (repository.user_view)."""
        if principal.user_id:
            async with self.db.hot_reads() as reads:
                return await repository.caller_views(reads, principal.user_id, principal.subject)
        async with self.db.read_engine.connect() as conn:
            return None, await repository.binding_views(conn, principal.subject)

    async def create_user(
        self,
        principal: Principal,
        *,
        phone: str,
        username: str,
        display_name: str,
        scope: str,
        password: str,
        command: Command,
    ) -> pb.User:
        if (earlier := await self.idempotency.recall(command, pb.User)) is not None:
            return earlier
        phone_e164 = domain.normalize_phone(phone)
        username_n = domain.normalize_username(username)
        name = domain.display_name(display_name)
        scope_n = domain.user_scope(scope, principal)
        domain.check_password(password)
        principal.require(Permission.USERS_WRITE, scope_n)
        password_hash = await self.passwords.hash(password)
        try:
            async with self.db.transaction() as session:
                if (earlier := await self.idempotency.claim(session, command, pb.User)) is not None:
                    return earlier
                await self._ensure_unique(session, phone_e164, username_n)
                user = await self._add_user(
                    session, principal, phone_e164, username_n, name, scope_n, password_hash
                )
                created = convert.user(user)
                await self.idempotency.record(session, command, created, f"users/{user.id}")
                return created
        except IntegrityError:
            # A concurrent create took the phone or username between our check and insert.
            raise AlreadyExists("a user with this phone or username already exists") from None

    async def _add_user(
        self,
        session: AsyncSession,
        principal: Principal | None,
        phone: str,
        username: str | None,
        display_name: str,
        scope: str,
        password_hash: str,
    ) -> User:
        """A new active user, written, and its `identity.v1.user.created` event."""
        now = utcnow()
        user = User(
            id=new_id(),
            phone=phone,
            username=username,
            display_name=display_name,
            scope=scope,
            state="active",
            password_hash=password_hash,
            create_time=now,
            update_time=now,
        )
        session.add(user)
        await session.flush()
        await self._emit(
            session,
            principal,
            "identity.v1.user.created",
            events_pb2.UserCreated(user=convert.user_summary(user)),
            f"users/{user.id}",
        )
        return user

    async def _ensure_unique(
        self, session: AsyncSession, phone: str | None, username: str | None, exclude: str | None = None
    ) -> None:
        if phone:
            other = await session.scalar(select(User.id).where(User.phone == phone))
            if other and other != exclude:
                raise AlreadyExists("a user with this phone already exists", field="phone")
        if username:
            other = await session.scalar(select(User.id).where(User.username == username))
            if other and other != exclude:
                raise AlreadyExists("a user with this username already exists", field="username")

    async def _load_user(self, session: AsyncSession, user_id: str, *, lock: bool = False) -> User:
        return await get_row(session, User, user_id, f"users/{user_id} not found", lock=lock)

    async def get_user(self, principal: Principal, user_id: str) -> User:
        """The user as a read-only view (repository.user_view): callers only convert it."""
        async with self.db.read_engine.connect() as conn:
            user = await repository.user_view(conn, user_id)
        # Same answer for "missing" and "not yours", so ids can't be probed.
        if user is None or not domain.can_read_user(principal, user.id, user.scope):
            raise NotFound(f"users/{user_id} not found")
        return user

    async def list_users(
        self,
        principal: Principal,
        *,
        page_size: int,
        page_token: str,
        scope: str,
        state: int,
        role: int,
        query: str,
    ) -> tuple[list[User], str]:
        visible = domain.readable_scopes(principal)
        if not visible:
            raise PermissionDenied("the caller may not list users")
        scope_f = validate_path(scope, field="scope") if scope else None
        state_f = convert.state_from_pb(state) if state else None
        role_f = convert.role_from_pb(role) if role else None
        if state and state_f is None:
            raise InvalidArgument("unknown state", field="state")
        if role and role_f is None:
            raise InvalidArgument("unknown role", field="role")
        query_f = query.strip()
        if len(query_f) > 64:
            raise InvalidArgument("must be at most 64 characters", field="query")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint(principal.subject, scope_f, state_f, role_f, query_f)
        cursor = pagination.decode_token(page_token, fp, t=dt.datetime, id=str)
        after = (cursor["t"], cursor["id"]) if cursor else None
        async with self.db.sessions() as session:
            rows = await repository.list_users(
                session,
                visible_scopes=visible,
                scope=scope_f,
                state=state_f,
                role=role_f,
                query=query_f or None,
                after=after,
                limit=size + 1,
            )
        rows, next_token = pagination.cut(rows, size, fp, time_cursor)
        return rows, next_token

    async def update_user(self, principal: Principal, user_id: str, changes: dict[str, str]) -> User:
        allowed = {"display_name", "username", "scope", "phone"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidArgument(f"cannot update {', '.join(sorted(unknown))}", field="update_mask")
        if not changes:
            raise InvalidArgument("names no field to update", field="update_mask")
        clean: dict[str, str | None] = {}
        if "display_name" in changes:
            clean["display_name"] = domain.display_name(changes["display_name"])
        if "username" in changes:
            clean["username"] = domain.normalize_username(changes["username"])
        if "phone" in changes:
            clean["phone"] = domain.normalize_phone(changes["phone"])
        if "scope" in changes:
            clean["scope"] = domain.user_scope(changes["scope"], principal)
        async with self.db.transaction() as session:
            user = await self._load_user(session, user_id, lock=True)
            self_edit_name_only = principal.user_id == user.id and set(clean) == {"display_name"}
            if not self_edit_name_only:
                bindings = repository.as_bindings(await repository.bindings_of(session, f"users/{user.id}"))
                domain.require_manage(principal, user.scope, bindings)
                if "scope" in clean:
                    principal.require(Permission.USERS_WRITE, str(clean["scope"]))
            await self._ensure_unique(session, clean.get("phone"), clean.get("username"), exclude=user.id)
            changed = [k for k, v in clean.items() if getattr(user, k) != v]
            for key in changed:
                setattr(user, key, clean[key])
            if changed:
                user.update_time = utcnow()
                await self._emit(
                    session,
                    principal,
                    "identity.v1.user.updated",
                    events_pb2.UserUpdated(user=convert.user_summary(user), changed_fields=changed),
                    f"users/{user.id}",
                )
            return user

    async def set_disabled(self, principal: Principal, user_id: str, disabled: bool) -> User:
        async with self.db.transaction() as session:
            user = await self._load_user(session, user_id, lock=True)
            bindings = repository.as_bindings(await repository.bindings_of(session, f"users/{user.id}"))
            domain.require_manage(principal, user.scope, bindings)
            if disabled and principal.user_id == user.id:
                raise FailedPrecondition("you cannot disable your own account")
            target = "disabled" if disabled else "active"
            if user.state == target:
                return user
            now = utcnow()
            user.state, user.update_time = target, now
            if disabled:
                await repository.revoke_principal_tokens(session, f"users/{user.id}", now)
                await self._emit(
                    session,
                    principal,
                    "identity.v1.user.disabled",
                    events_pb2.UserDisabled(user=convert.user_summary(user)),
                    f"users/{user.id}",
                )
                await self._revoke_tokens(
                    session,
                    principal.subject,
                    f"users/{user.id}",
                    events_pb2.REVOCATION_REASON_USER_DISABLED,
                )
            else:
                await self._emit(
                    session,
                    principal,
                    "identity.v1.user.enabled",
                    events_pb2.UserEnabled(user=convert.user_summary(user)),
                    f"users/{user.id}",
                )
            return user

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        if principal.user_id is None:
            raise FailedPrecondition("only users have passwords")
        if not current:
            raise InvalidArgument("is required", field="current_password")
        domain.check_password(new, field="new_password")
        async with self.db.sessions() as session:
            user = await self._load_user(session, principal.user_id)
        if not await self.passwords.verify(user.password_hash, current):
            raise PermissionDenied("the current password is wrong")
        new_hash = await self.passwords.hash(new)
        async with self.db.transaction() as session:
            row = await self._load_user(session, user.id, lock=True)
            # Every session ends, this one included: tokens issued before now stop working.
            await self._replace_password(
                session,
                principal,
                row,
                new_hash,
                "identity.v1.password.changed",
                events_pb2.PasswordChanged(user=f"users/{user.id}"),
                events_pb2.REVOCATION_REASON_PASSWORD_CHANGED,
            )

    async def reset_password(self, principal: Principal, user_id: str, new: str) -> None:
        domain.check_password(new, field="new_password")
        new_hash = await self.passwords.hash(new)
        async with self.db.transaction() as session:
            user = await self._load_user(session, user_id, lock=True)
            bindings = repository.as_bindings(await repository.bindings_of(session, f"users/{user.id}"))
            domain.require_manage(principal, user.scope, bindings)
            # The owner may have been waiting out failed attempts: the new password works at once.
            logins = [user.phone] + ([user.username] if user.username else [])
            await session.execute(delete(LoginAttempts).where(LoginAttempts.login_key.in_(logins)))
            await self._replace_password(
                session,
                principal,
                user,
                new_hash,
                "identity.v1.password.reset",
                events_pb2.PasswordReset(user=f"users/{user.id}"),
                events_pb2.REVOCATION_REASON_PASSWORD_RESET,
            )

    async def _replace_password(
        self,
        session: AsyncSession,
        principal: Principal,
        user: User,
        new_hash: str,
        event_type: str,
        event: Message,
        reason: int,
    ) -> None:
        """Store the new hash and end every session of the user (their tokens stop working now)."""
        user.password_hash, user.update_time = new_hash, utcnow()
        await repository.revoke_principal_tokens(session, f"users/{user.id}", utcnow())
        await self._emit(session, principal, event_type, event, f"users/{user.id}")
        await self._revoke_tokens(session, principal.subject, f"users/{user.id}", reason)

    async def ensure_admin(self, login: str, password: str, phone: str) -> bool:
        """Create the first global admin unless that login exists. True if created."""
        domain.check_password(password, field="ADMIN_PASSWORD")
        key = domain.login_key(login)
        phone_e164 = key if key.startswith("+86") else domain.normalize_phone(phone, field="ADMIN_PHONE")
        username = None if key.startswith("+86") else domain.normalize_username(login, field="ADMIN_LOGIN")
        password_hash = await self.passwords.hash(password)
        async with self.db.transaction() as session:
            if await repository.user_by_login(session, phone_e164, None) or (
                username and await repository.user_by_login(session, None, username)
            ):
                return False
            user = await self._add_user(
                session, None, phone_e164, username, "Administrator", GLOBAL, password_hash
            )
            binding = RoleBinding(
                id=new_id(),
                principal=f"users/{user.id}",
                role=Role.ADMIN.value,
                scope=GLOBAL,
                granted_by="system",
                create_time=user.create_time,
            )
            session.add(binding)
            await session.flush()
            await self._emit(
                session,
                None,
                "identity.v1.role.granted",
                events_pb2.RoleGranted(role_binding=convert.role_binding(binding)),
                f"users/{user.id}/roleBindings/{binding.id}",
            )
        return True
