"""What identity's flows share: the database, settings, password hashing, events and revocations."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from govkit.auth.revocations import REVOCATION_SUBJECT
from govkit.db import Database, utcnow
from govkit.emitter import Emitter
from govkit.events import build_event
from govkit.outbox import add_event
from govkit.resources import available_cpus
from services.identity import convert
from services.identity.models import RoleBinding, ServiceAccount, User, platform
from services.identity.settings import IdentitySettings

# Verifiers keep a revocation this much longer than an access token lives (their clock leeway).
REVOCATION_MARGIN_SECONDS = 60


def time_cursor(row: User | RoleBinding | ServiceAccount) -> dict[str, str]:
    """Keyset position of a row in (create_time, id) order."""
    return {"t": row.create_time.isoformat(), "id": row.id}


class Passwords:
    """argon2 hashing off the event loop, at most one hash per core at a time."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the login is unknown, so both answers take the same time.
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        # One hash per core at a time: each takes argon2_memory_kib of RAM, and more threads than
        # cores only add memory and latency, not throughput.
        self._hashing = ThreadPoolExecutor(
            max_workers=settings.argon2_threads or available_cpus(), thread_name_prefix="argon2"
        )

    async def hash(self, password: str) -> str:
        # argon2 releases the GIL: hashing in threads keeps the event loop responsive.
        return await asyncio.get_running_loop().run_in_executor(self._hashing, self.hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._hashing, self.hasher.verify, stored, password
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)


class FlowBase:
    """The state and helpers every group of identity's use cases needs."""

    def __init__(self, db: Database, settings: IdentitySettings, passwords: Passwords) -> None:
        self.db = db
        self.settings = settings
        self.passwords = passwords
        self._emit = Emitter(platform.outbox)

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
