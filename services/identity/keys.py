"""Signing keys: ES256 key pairs stored encrypted, a JWKS of every key whose tokens may be live, rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import or_, select, update

from gov.identity.v1 import events_pb2
from govkit.auth.tokens import ALGORITHM
from govkit.db import Database, utcnow
from govkit.events import build_event
from govkit.outbox import add_event
from services.identity.models import SigningKey, platform

# Tokens carry a few seconds of clock-skew leeway; keep retired keys published a bit longer.
_PUBLISH_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    create_time: dt.datetime


def _new_key(passphrase: bytes, now: dt.datetime) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = f"{now:%Y%m%d}-{secrets.token_hex(6)}"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode()
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return SigningKey(
        kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=json.dumps(public_jwk), create_time=now
    )


class KeyRing:
    def __init__(
        self, db: Database, passphrase: bytes, access_ttl: dt.timedelta, rotation: dt.timedelta
    ) -> None:
        self.db = db
        self.passphrase = passphrase
        self.access_ttl = access_ttl
        self.rotation = rotation
        self._active: ActiveKey | None = None
        self._jwks: dict[str, Any] = {"keys": []}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read keys from the database; create the first key, or rotate one that is too old."""
        async with self._lock:
            now = utcnow()
            rows = await self._unexpired(now)
            signing = [r for r in rows if r.retire_time is None]
            newest = max(signing, key=lambda r: r.create_time, default=None)
            if newest is None or now - newest.create_time > self.rotation:
                await self._rotate_locked()
                return
            self._publish(rows, newest)

    async def _unexpired(self, now: dt.datetime) -> Sequence[SigningKey]:
        """The keys still in the JWKS at `now`: the signing one and the retired ones not yet expired."""
        unexpired = or_(SigningKey.expire_time.is_(None), SigningKey.expire_time > now)
        async with self.db.sessions() as session:
            return (await session.scalars(select(SigningKey).where(unexpired))).all()

    def _publish(self, rows: Sequence[SigningKey], newest: SigningKey) -> None:
        if self._active is None or self._active.kid != newest.kid:
            private = serialization.load_pem_private_key(newest.private_pem.encode(), self.passphrase)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            self._active = ActiveKey(newest.kid, private, newest.create_time)
        self._jwks = {"keys": [json.loads(r.public_jwk) for r in sorted(rows, key=lambda r: r.create_time)]}

    async def rotate(self, actor: str = "system") -> ActiveKey:
        async with self._lock:
            return await self._rotate_locked(actor)

    async def _rotate_locked(self, actor: str = "system") -> ActiveKey:
        now = utcnow()
        key = _new_key(self.passphrase, now)
        async with self.db.transaction() as session:
            retired = list(
                (await session.scalars(select(SigningKey.kid).where(SigningKey.retire_time.is_(None)))).all()
            )
            # Old keys stop signing now and leave the JWKS once the last token they signed has expired.
            await session.execute(
                update(SigningKey)
                .where(SigningKey.retire_time.is_(None))
                .values(retire_time=now, expire_time=now + self.access_ttl + _PUBLISH_MARGIN)
            )
            session.add(key)
            if retired:  # a rotation, not the first key of a new installation
                payload = events_pb2.SigningKeyRotated(kid=key.kid, retired_kids=retired)
                event = build_event(
                    "identity.v1.signing_key.rotated", payload, actor=actor, resource=f"signingKeys/{key.kid}"
                )
                await add_event(session, platform.outbox, event)
        self._publish(await self._unexpired(now), key)
        assert self._active is not None
        return self._active

    def sign(self, claims: dict[str, Any]) -> str:
        if self._active is None:
            raise RuntimeError("key ring not loaded")
        return jwt.encode(
            claims, self._active.private_key, algorithm=ALGORITHM, headers={"kid": self._active.kid}
        )

    @property
    def active(self) -> ActiveKey | None:
        return self._active

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    async def fetch_jwks(self) -> dict[str, Any]:
        """JwksSource for identity's own verifier: re-read, since another replica may have rotated."""
        await self.load()
        return self._jwks
