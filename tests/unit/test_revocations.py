"""The deny-list every verifier keeps: by subject and time, by session, forgotten after expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gov.identity.v1 import events_pb2
from govkit.auth.revocations import REVOCATION_SUBJECT, Revocations
from govkit.auth.tokens import AUDIENCE, TokenVerifier
from govkit.errors import Unauthenticated
from govkit.events import build_event, parse_event
from govkit.protobuf import timestamp


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_subject_entries_deny_tokens_issued_before_the_cutoff_only() -> None:
    clock = Clock(1000.0)
    r = Revocations(clock)
    r.deny("users/a", issued_before=999.5, expire_at=1300.0)
    assert r.is_revoked("users/a", "s1", 999.499)
    assert not r.is_revoked("users/a", "s1", 999.5)  # a login right after the change works
    assert not r.is_revoked("users/b", "s1", 10.0)
    # A later cutoff for the same subject replaces the earlier one.
    r.deny("users/a", issued_before=1001.0, expire_at=1200.0)
    assert r.is_revoked("users/a", "", 1000.0)
    clock.now = 1300.0
    assert not r.is_revoked("users/a", "", 1000.0)


def test_session_entries_deny_every_token_of_the_session() -> None:
    clock = Clock(1000.0)
    r = Revocations(clock)
    r.deny("users/a", session="s1", issued_before=1000.0, expire_at=1300.0)
    assert r.is_revoked("users/a", "s1", 1_000_000.0)
    assert not r.is_revoked("users/a", "s2", 900.0)
    assert not r.is_revoked("users/a", "", 900.0)


def test_expired_entries_are_ignored_and_pruned() -> None:
    clock = Clock(1000.0)
    r = Revocations(clock)
    r.deny("users/old", issued_before=900.0, expire_at=999.0)  # already useless
    r.deny("users/a", issued_before=1000.0, expire_at=1010.0)
    r.deny("users/a", session="s", issued_before=1000.0, expire_at=1010.0)
    assert len(r) == 2
    clock.now = 2000.0
    r.deny("users/b", issued_before=2000.0, expire_at=2100.0)  # triggers a prune
    assert len(r) == 1


def test_applies_identity_events() -> None:
    now = dt.datetime.fromtimestamp(1_800_000_000.25, dt.UTC)
    r = Revocations(Clock(now.timestamp()))
    payload = events_pb2.TokensRevoked(
        principal="users/a",
        issued_before=timestamp(now),
        expire_time=timestamp(now + dt.timedelta(minutes=6)),
        reason=events_pb2.REVOCATION_REASON_USER_DISABLED,
    )
    built = build_event(REVOCATION_SUBJECT, payload, actor="users/x", resource="users/a")
    r.apply(parse_event(built.envelope))
    assert r.is_revoked("users/a", "", now.timestamp() - 0.001)
    assert not r.is_revoked("users/a", "", now.timestamp() + 0.001)


class _Keys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.document = {"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}

    async def fetch_jwks(self) -> dict:  # type: ignore[type-arg]
        return self.document

    def token(self, **claims: object) -> str:
        now = time.time()
        body = {"iss": "gov-identity", "aud": AUDIENCE, "sub": "users/a", "typ": "access"}
        body.update({"iat": round(now, 3), "exp": int(now) + 300, "jti": "j", "sid": "s1", **claims})
        return jwt.encode(body, self.private, algorithm="ES256", headers={"kid": "k1"})


async def test_the_verifier_refuses_revoked_tokens() -> None:
    keys = _Keys()
    verifier = TokenVerifier(keys)
    token = keys.token()
    principal = await verifier.verify(token)
    assert principal.session_id == "s1" and principal.issued_at > 0
    verifier.revocations.deny("users/a", session="s1", issued_before=0, expire_at=time.time() + 60)
    with pytest.raises(Unauthenticated, match="revoked"):
        await verifier.verify(token)
    assert (await verifier.verify(keys.token(sid="s2"))).session_id == "s2"


async def test_a_cached_token_still_expires_on_time() -> None:
    keys = _Keys()
    verifier = TokenVerifier(keys, leeway=0)
    token = keys.token(exp=time.time() + 1.0)
    await verifier.verify(token)
    await verifier.verify(token)  # from the cache
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_withdrawing_a_key_withdraws_the_tokens_it_vouched_for() -> None:
    keys = _Keys()
    verifier = TokenVerifier(keys, min_refresh_interval=0)
    token = keys.token()
    await verifier.verify(token)
    # Identity withdraws k1 (a leaked key) and publishes k2: k1's tokens, cached or not, stop working.
    replacement = _Keys()
    replacement.document["keys"][0]["kid"] = "k2"
    keys.document = replacement.document
    await verifier.refresh(force=True)
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(token)


async def test_the_cache_of_verified_tokens_is_bounded() -> None:
    keys = _Keys()
    verifier = TokenVerifier(keys)
    verifier.cache_size = 3
    tokens = [keys.token(jti=f"j{i}") for i in range(5)]
    for token in tokens:
        assert (await verifier.verify(token)).token_id in {f"j{i}" for i in range(5)}
    assert len(verifier._verified) == 3
    # The oldest ones were dropped, and are verified afresh on their next use.
    assert (await verifier.verify(tokens[0])).token_id == "j0"
