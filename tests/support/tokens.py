"""Access tokens signed by a key of the test's own, and the key set that vouches for them: what
identity would issue and publish, for code that verifies tokens without an identity service."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from govkit.auth.tokens import ALGORITHM, AUDIENCE, DEFAULT_ISSUER

KID = "test-key"


class StaticJwks:
    """The key set an identity service would publish, here for one key (a govkit JwksSource)."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
        self.document = {"keys": [{**jwk, "kid": KID, "alg": ALGORITHM, "use": "sig"}]}

    async def fetch_jwks(self) -> dict[str, Any]:
        return self.document


def access_token(
    key: ec.EllipticCurvePrivateKey, subject: str = "users/alice", *, ttl: int = 300, **overrides: Any
) -> str:
    """An access token for `subject`, valid for `ttl` seconds; `overrides` replace claims."""
    now = int(time.time())
    claims = {
        "iss": DEFAULT_ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
        "typ": "access",
        "roles": [],
        **overrides,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": KID})
