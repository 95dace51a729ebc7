"""Identity's business logic: every use case as one method, each a single transaction."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from govkit import pagination
from govkit.auth.logins import address_key
from govkit.auth.principal import Principal
from govkit.auth.revocations import REVOCATION_SUBJECT
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import GLOBAL, validate_path
from govkit.auth.tokens import AUDIENCE
from govkit.db import Database, new_id, utcnow
from govkit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from govkit.events import build_event
from govkit.idempotency import Command, IdempotencyKeys
from govkit.outbox import add_event
from govkit.resources import available_cpus
from services.identity import convert, domain, repository
from services.identity.keys import KeyRing
from services.identity.models import LoginAttempts, RefreshToken, RoleBinding, ServiceAccount, User, platform
from services.identity.settings import IdentitySettings

BAD_CREDENTIALS = "wrong login or password"
# Attempts whose client address is unknown share one counter per login.
UNKNOWN_CLIENT = "unknown"
# Verifiers keep a revocation this much longer than an access token lives (their clock leeway).
REVOCATION_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str = ""
    refresh_expire_time: dt.datetime | None = None


def _time_cursor(row: User | RoleBinding | ServiceAccount) -> dict[str, str]:
    """Keyset position of a row in (create_time, id) order."""
    return {"t": row.create_time.isoformat(), "id": row.id}


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _actor(principal: Principal | None) -> str:
    return principal.subject if principal else "system"


class IdentityFlows:
    def __init__(self, db: Database, settings: IdentitySettings, keys: KeyRing) -> None:
        self.db = db
        self.settings = settings
        self.keys = keys
        self.idempotency = IdempotencyKeys(db, platform.idempotency)
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.lockout = domain.LockoutPolicy(
            threshold=settings.lockout_threshold,
            window=dt.timedelta(seconds=settings.lockout_window_seconds),
            duration=dt.timedelta(seconds=settings.lockout_duration_seconds),
        )
        # Verified against when the login is unknown, so both answers take the same time.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # One hash per core at a time: each takes argon2_memory_kib of RAM, and more threads than
        # cores only add memory and latency, not throughput.
        self._hashing = ThreadPoolExecutor(
            max_workers=settings.argon2_threads or available_cpus(), thread_name_prefix="argon2"
        )

    # ----------------------------------------------------------------- passwords

    async def _hash(self, password: str) -> str:
        # argon2 releases the GIL: hashing in threads keeps the event loop responsive.
        return await asyncio.get_running_loop().run_in_executor(self._hashing, self.hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._hashing, self.hasher.verify, stored, password
            )
        except (VerificationError, InvalidHashError):
            return False

    # ----------------------------------------------------------------- tokens

    def _access_token(
        self, subject: str, bindings: list[RoleBinding], now: dt.datetime, session_id: str = ""
    ) -> str:
        ttl = self.settings.access_token_ttl_seconds
        claims = {
            "iss": self.settings.token_issuer,
            "aud": AUDIENCE,
            "sub": subject,
            "typ": "access",
            # To the millisecond (RFC 7519 allows fractions): a token issued just after a
            # revocation must not look as old as the tokens it revoked.
            "iat": round(now.timestamp(), 3),
            "exp": int(now.timestamp()) + ttl,
            "jti": new_id(),
            "roles": [[b.role, b.scope] for b in bindings],
        }
        if session_id:
            # The login session (refresh-token family), so a logout can end exactly its tokens.
            claims["sid"] = session_id
        return self.keys.sign(claims)

    async def _issue(self, session: AsyncSession, subject: str, family_id: str, now: dt.datetime) -> Tokens:
        bindings = await repository.bindings_of(session, subject)
        refresh = secrets.token_urlsafe(32)
        expire = now + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        session.add(
            RefreshToken(
                id=new_id(),
                family_id=family_id,
                principal=subject,
                token_hash=_hash_token(refresh),
                create_time=now,
                expire_time=expire,
                used_at=None,
                revoked_at=None,
            )
        )
        return Tokens(
            access_token=self._access_token(subject, bindings, now, family_id),
            expires_in=self.settings.access_token_ttl_seconds,
            refresh_token=refresh,
            refresh_expire_time=expire,
        )

    async def login(self, login: str, password: str, client: str = "") -> Tokens:
        """Password login. `client` is the caller's address (advisory: it only picks the counter)."""
        if not login.strip():
            raise InvalidArgument("is required", field="login")
        if not password:
            raise InvalidArgument("is required", field="password")
        if len(login) > 100 or len(password) > domain.PASSWORD_MAX:
            raise Unauthenticated(BAD_CREDENTIALS)
        key = domain.login_key(login)
        client_key = address_key(client) or UNKNOWN_CLIENT
        # Counted before the password is checked, in one locked step: of N concurrent guesses
        # at most `threshold` get as far as a hash.
        failures = await self._reserve_attempt(key, client_key)
        async with self.db.sessions() as session:
            phone = key if key.startswith("+86") else None
            user = await repository.user_by_login(session, phone, None if phone else key)
        ok = await self._verify(user.password_hash if user else self._dummy_hash, password)
        if not ok or user is None:
            if user is not None and failures == self.lockout.threshold:
                await self._announce_lock(user, failures)
            raise Unauthenticated(BAD_CREDENTIALS)
        async with self.db.transaction() as session:
            # Locked, so a disable or password change either finished first (and is seen here) or
            # waits for this token to be issued, and then revokes it.
            row = await session.get(User, user.id, with_for_update=True, populate_existing=True)
            if row is None or row.password_hash != user.password_hash:
                raise Unauthenticated(BAD_CREDENTIALS)
            if row.state != "active":
                raise Unauthenticated("this account is disabled")
            await repository.clear_attempts(session, key, client_key)
            if self.hasher.check_needs_rehash(row.password_hash):
                row.password_hash = await self._hash(password)
            return await self._issue(session, f"users/{row.id}", new_id(), utcnow())

    @staticmethod
    def _state(row: LoginAttempts | None) -> domain.AttemptState | None:
        if row is None or row.failures == 0:
            return None
        return domain.AttemptState(row.failures, row.last_attempt, row.locked_until)

    @staticmethod
    def _locked_error(until: dt.datetime, now: dt.datetime) -> ResourceExhausted:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        return ResourceExhausted(
            f"too many failed logins; try again in {seconds} seconds", retry_after=seconds
        )

    async def _reserve_attempt(self, key: str, client: str) -> int:
        """Count an attempt as failed until it succeeds; refuse it while this client must wait.

        Returns the consecutive failures counted so far, this attempt included.
        """
        now = utcnow()
        async with self.db.transaction() as session:
            row = await repository.attempts_for_update(session, key, client, now)
            state = self._state(row)
            locked_until = domain.is_locked(state, now)
            if locked_until:
                raise self._locked_error(locked_until, now)
            state = domain.record_failure(state, now, self.lockout)
            row.failures, row.last_attempt, row.locked_until = (
                state.failures,
                state.last_attempt,
                state.locked_until,
            )
            return state.failures

    async def _announce_lock(self, user: User, failures: int) -> None:
        async with self.db.transaction() as session:
            await add_event(
                session,
                platform.outbox,
                build_event(
                    "identity.v1.login.locked",
                    events_pb2.LoginLocked(
                        user=f"users/{user.id}",
                        failed_attempts=failures,
                        locked_seconds=int(self.lockout.delay_after(failures).total_seconds()),
                    ),
                    actor="system",
                    resource=f"users/{user.id}",
                ),
            )

    async def _revoke_tokens(
        self, session: AsyncSession, actor: str, subject: str, reason: int, *, session_id: str = ""
    ) -> None:
        """Announce that access tokens must stop working now, not when they expire.

        Every verifier keeps the entry until the last token it can match has expired.
        """
        now = utcnow()
        lifetime = self.settings.access_token_ttl_seconds + REVOCATION_MARGIN_SECONDS
        forget = now + dt.timedelta(seconds=lifetime)
        payload = events_pb2.TokensRevoked(
            principal=subject,
            session=session_id,
            issued_before=convert.ts(now),
            expire_time=convert.ts(forget),
            reason=reason,  # type: ignore[arg-type]
        )
        resource = f"{subject}/sessions/{session_id}" if session_id else subject
        await add_event(
            session,
            platform.outbox,
            build_event(REVOCATION_SUBJECT, payload, actor=actor, resource=resource, time=now),
        )

    async def refresh(self, refresh_token: str) -> Tokens:
        if not refresh_token:
            raise InvalidArgument("is required", field="refresh_token")
        now = utcnow()
        refused: str | None = None
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(RefreshToken)
                .where(RefreshToken.token_hash == _hash_token(refresh_token))
                .with_for_update()
            )
            if row is None:
                raise Unauthenticated("invalid refresh token")
            if row.revoked_at is not None or row.used_at is not None:
                # A spent token presented again means it leaked: end the whole session family,
                # its access tokens included.
                if await repository.revoke_family(session, row.family_id, now):
                    await self._revoke_tokens(
                        session,
                        "system",
                        row.principal,
                        events_pb2.REVOCATION_REASON_REFRESH_TOKEN_REUSED,
                        session_id=row.family_id,
                    )
                refused = "refresh token reuse detected; the session has been revoked"
            elif row.expire_time <= now:
                refused = "refresh token expired"
            elif not await self._principal_active(session, row.principal):
                await repository.revoke_family(session, row.family_id, now)
                refused = "this account is disabled"
            elif not await repository.mark_used(session, row.id, now):
                if await repository.revoke_family(session, row.family_id, now):
                    await self._revoke_tokens(
                        session,
                        "system",
                        row.principal,
                        events_pb2.REVOCATION_REASON_REFRESH_TOKEN_REUSED,
                        session_id=row.family_id,
                    )
                refused = "refresh token reuse detected; the session has been revoked"
            else:
                return await self._issue(session, row.principal, row.family_id, utcnow())
        # Raised after commit, so the revocation above sticks.
        raise Unauthenticated(refused)

    async def _principal_active(self, session: AsyncSession, principal: str) -> bool:
        if principal.startswith("users/"):
            # Locked, so a concurrent disable cannot slip between this check and the new token.
            user = await session.get(
                User, principal.removeprefix("users/"), with_for_update=True, populate_existing=True
            )
            return user is not None and user.state == "active"
        return False

    async def logout(self, refresh_token: str) -> None:
        if not refresh_token:
            raise InvalidArgument("is required", field="refresh_token")
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == _hash_token(refresh_token))
            )
            if row is not None and await repository.revoke_family(session, row.family_id, utcnow()):
                await self._revoke_tokens(
                    session,
                    row.principal,
                    row.principal,
                    events_pb2.REVOCATION_REASON_LOGOUT,
                    session_id=row.family_id,
                )

    async def service_token(self, client_id: str, client_secret: str) -> Tokens:
        if not client_id:
            raise InvalidArgument("is required", field="client_id")
        if not client_secret:
            raise InvalidArgument("is required", field="client_secret")
        async with self.db.sessions() as session:
            account = await session.scalar(
                select(ServiceAccount).where(ServiceAccount.client_id == client_id[:64])
            )
            subject = f"serviceAccounts/{account.id}" if account else ""
            bindings = await repository.bindings_of(session, subject) if account else []
        ok = await self._verify(account.secret_hash if account else self._dummy_hash, client_secret)
        if not ok or account is None or account.disabled:
            raise Unauthenticated("invalid client credentials")
        return Tokens(
            access_token=self._access_token(subject, bindings, utcnow()),
            expires_in=self.settings.access_token_ttl_seconds,
        )

    # ----------------------------------------------------------------- users

    async def caller(self, principal: Principal) -> tuple[User | None, list[RoleBinding]]:
        async with self.db.sessions() as session:
            user = await session.get(User, principal.user_id) if principal.user_id else None
            return user, await repository.bindings_of(session, principal.subject)

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
        password_hash = await self._hash(password)
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                if (earlier := await self.idempotency.claim(session, command, pb.User)) is not None:
                    return earlier
                await self._ensure_unique(session, phone_e164, username_n)
                user = User(
                    id=new_id(),
                    phone=phone_e164,
                    username=username_n,
                    display_name=name,
                    scope=scope_n,
                    state="active",
                    password_hash=password_hash,
                    create_time=now,
                    update_time=now,
                )
                session.add(user)
                await session.flush()
                created = convert.user(user)
                await self.idempotency.record(session, command, created, f"users/{user.id}")
                await self._emit(
                    session,
                    principal,
                    "identity.v1.user.created",
                    events_pb2.UserCreated(user=convert.user_summary(user)),
                    f"users/{user.id}",
                )
                return created
        except IntegrityError:
            # A concurrent create took the phone or username between our check and insert.
            raise AlreadyExists("a user with this phone or username already exists") from None

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

    async def _emit(
        self, session: AsyncSession, principal: Principal | None, event_type: str, payload, resource: str
    ) -> None:  # type: ignore[no-untyped-def]
        await add_event(
            session,
            platform.outbox,
            build_event(event_type, payload, actor=_actor(principal), resource=resource),
        )

    async def _load_user(self, session: AsyncSession, user_id: str, *, lock: bool = False) -> User:
        user = await session.get(User, user_id, with_for_update=lock)
        if user is None:
            raise NotFound(f"users/{user_id} not found")
        return user

    async def get_user(self, principal: Principal, user_id: str) -> User:
        async with self.db.sessions() as session:
            user = await session.get(User, user_id)
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
        rows, next_token = pagination.cut(
            rows, size, fp, lambda r: {"t": r.create_time.isoformat(), "id": r.id}
        )
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
        if not await self._verify(user.password_hash, current):
            raise PermissionDenied("the current password is wrong")
        new_hash = await self._hash(new)
        async with self.db.transaction() as session:
            row = await self._load_user(session, user.id, lock=True)
            row.password_hash, row.update_time = new_hash, utcnow()
            # Every session ends, this one included: tokens issued before now stop working.
            await repository.revoke_principal_tokens(session, f"users/{user.id}", utcnow())
            await self._emit(
                session,
                principal,
                "identity.v1.password.changed",
                events_pb2.PasswordChanged(user=f"users/{user.id}"),
                f"users/{user.id}",
            )
            await self._revoke_tokens(
                session,
                principal.subject,
                f"users/{user.id}",
                events_pb2.REVOCATION_REASON_PASSWORD_CHANGED,
            )

    async def reset_password(self, principal: Principal, user_id: str, new: str) -> None:
        domain.check_password(new, field="new_password")
        new_hash = await self._hash(new)
        async with self.db.transaction() as session:
            user = await self._load_user(session, user_id, lock=True)
            bindings = repository.as_bindings(await repository.bindings_of(session, f"users/{user.id}"))
            domain.require_manage(principal, user.scope, bindings)
            user.password_hash, user.update_time = new_hash, utcnow()
            await repository.revoke_principal_tokens(session, f"users/{user.id}", utcnow())
            # The owner may have been waiting out failed attempts: the new password works at once.
            logins = [user.phone] + ([user.username] if user.username else [])
            await session.execute(delete(LoginAttempts).where(LoginAttempts.login_key.in_(logins)))
            await self._emit(
                session,
                principal,
                "identity.v1.password.reset",
                events_pb2.PasswordReset(user=f"users/{user.id}"),
                f"users/{user.id}",
            )
            await self._revoke_tokens(
                session,
                principal.subject,
                f"users/{user.id}",
                events_pb2.REVOCATION_REASON_PASSWORD_RESET,
            )

    # ----------------------------------------------------------------- role bindings

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
                        granter_role=convert.role_to_pb(authority.role),  # type: ignore[arg-type]
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
        rows, next_token = pagination.cut(
            rows, size, fp, lambda r: {"t": r.create_time.isoformat(), "id": r.id}
        )
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

    # ----------------------------------------------------------------- service accounts, keys

    async def create_service_account(
        self, principal: Principal, display_name: str
    ) -> tuple[ServiceAccount, str]:
        principal.require(Permission.SERVICE_ACCOUNTS_MANAGE, GLOBAL)
        name = domain.display_name(display_name)
        secret = secrets.token_urlsafe(32)
        secret_hash = await self._hash(secret)
        async with self.db.transaction() as session:
            account = ServiceAccount(
                id=new_id(),
                client_id=f"sa-{secrets.token_hex(8)}",
                display_name=name,
                secret_hash=secret_hash,
                disabled=False,
                create_time=utcnow(),
            )
            session.add(account)
            await session.flush()
            await self._emit(
                session,
                principal,
                "identity.v1.service_account.created",
                events_pb2.ServiceAccountCreated(service_account=convert.service_account(account)),
                f"serviceAccounts/{account.id}",
            )
        return account, secret

    async def list_service_accounts(
        self, principal: Principal, *, page_size: int, page_token: str
    ) -> tuple[list[ServiceAccount], str]:
        principal.require(Permission.SERVICE_ACCOUNTS_MANAGE, GLOBAL)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("service_accounts")
        cursor = pagination.decode_token(page_token, fp, t=dt.datetime, id=str)
        after = (cursor["t"], cursor["id"]) if cursor else None
        async with self.db.sessions() as session:
            rows = await repository.list_service_accounts(session, after=after, limit=size + 1)
        rows, next_token = pagination.cut(
            rows, size, fp, lambda r: {"t": r.create_time.isoformat(), "id": r.id}
        )
        return rows, next_token

    async def rotate_signing_key(self, principal: Principal):  # type: ignore[no-untyped-def]
        principal.require(Permission.SIGNING_KEYS_ROTATE, GLOBAL)
        return await self.keys.rotate(principal.subject)

    # ----------------------------------------------------------------- bootstrap

    async def ensure_admin(self, login: str, password: str, phone: str) -> bool:
        """Create the first global admin unless that login exists. True if created."""
        domain.check_password(password, field="ADMIN_PASSWORD")
        key = domain.login_key(login)
        phone_e164 = key if key.startswith("+86") else domain.normalize_phone(phone, field="ADMIN_PHONE")
        username = None if key.startswith("+86") else domain.normalize_username(login, field="ADMIN_LOGIN")
        password_hash = await self._hash(password)
        now = utcnow()
        async with self.db.transaction() as session:
            if await repository.user_by_login(session, phone_e164, None) or (
                username and await repository.user_by_login(session, None, username)
            ):
                return False
            user = User(
                id=new_id(),
                phone=phone_e164,
                username=username,
                display_name="Administrator",
                scope=GLOBAL,
                state="active",
                password_hash=password_hash,
                create_time=now,
                update_time=now,
            )
            session.add(user)
            binding = RoleBinding(
                id=new_id(),
                principal=f"users/{user.id}",
                role=Role.ADMIN.value,
                scope=GLOBAL,
                granted_by="system",
                create_time=now,
            )
            session.add(binding)
            await session.flush()
            await self._emit(
                session,
                None,
                "identity.v1.user.created",
                events_pb2.UserCreated(user=convert.user_summary(user)),
                f"users/{user.id}",
            )
            await self._emit(
                session,
                None,
                "identity.v1.role.granted",
                events_pb2.RoleGranted(role_binding=convert.role_binding(binding)),
                f"users/{user.id}/roleBindings/{binding.id}",
            )
        return True
