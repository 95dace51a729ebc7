"""Tokens: password and service-account logins, refresh, logout, the lockout, signing keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from govkit.auth.logins import address_key
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL
from govkit.auth.tokens import AUDIENCE
from govkit.db import Database, new_id, utcnow
from govkit.errors import InvalidArgument, ResourceExhausted, Unauthenticated
from govkit.events import build_event
from govkit.outbox import add_event
from services.identity import domain, repository
from services.identity.flows.common import FlowBase, Passwords
from services.identity.keys import ActiveKey, KeyRing
from services.identity.models import LoginAttempts, RefreshToken, RoleBinding, ServiceAccount, User, platform
from services.identity.settings import IdentitySettings

BAD_CREDENTIALS = "wrong login or password"
# Attempts whose client address is unknown share one counter per login.
UNKNOWN_CLIENT = "unknown"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str = ""
    refresh_expire_time: dt.datetime | None = None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenFlows(FlowBase):
    def __init__(self, db: Database, settings: IdentitySettings, passwords: Passwords, keys: KeyRing) -> None:
        super().__init__(db, settings, passwords)
        self.keys = keys
        self.lockout = domain.LockoutPolicy(
            threshold=settings.lockout_threshold,
            window=dt.timedelta(seconds=settings.lockout_window_seconds),
            duration=dt.timedelta(seconds=settings.lockout_duration_seconds),
        )

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
        ok = await self.passwords.verify(user.password_hash if user else self.passwords.dummy_hash, password)
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
            if self.passwords.needs_rehash(row.password_hash):
                row.password_hash = await self.passwords.hash(password)
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
                await self._end_reused_family(session, row, now)
                refused = "refresh token reuse detected; the session has been revoked"
            elif row.expire_time <= now:
                refused = "refresh token expired"
            elif not await self._principal_active(session, row.principal):
                await repository.revoke_family(session, row.family_id, now)
                refused = "this account is disabled"
            elif not await repository.mark_used(session, row.id, now):
                await self._end_reused_family(session, row, now)
                refused = "refresh token reuse detected; the session has been revoked"
            else:
                return await self._issue(session, row.principal, row.family_id, utcnow())
        # Raised after commit, so the revocation above sticks.
        raise Unauthenticated(refused)

    async def _end_reused_family(self, session: AsyncSession, row: RefreshToken, now: dt.datetime) -> None:
        """A reused refresh token ends its session family, and the family's access tokens with it."""
        if await repository.revoke_family(session, row.family_id, now):
            await self._revoke_tokens(
                session,
                "system",
                row.principal,
                events_pb2.REVOCATION_REASON_REFRESH_TOKEN_REUSED,
                session_id=row.family_id,
            )

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
        ok = await self.passwords.verify(
            account.secret_hash if account else self.passwords.dummy_hash, client_secret
        )
        if not ok or account is None or account.disabled:
            raise Unauthenticated("invalid client credentials")
        return Tokens(
            access_token=self._access_token(subject, bindings, utcnow()),
            expires_in=self.settings.access_token_ttl_seconds,
        )

    async def rotate_signing_key(self, principal: Principal) -> ActiveKey:
        principal.require(Permission.SIGNING_KEYS_ROTATE, GLOBAL)
        return await self.keys.rotate(principal.subject)
