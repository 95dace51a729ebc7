"""A service's own access token, by the client-credentials grant from identity.

A consumer that must read other services' data for nobody in particular (notifications reading
contact details, say) calls them as its own service account. The token is fetched on first use and
fetched again shortly before it expires, once however many calls wait for it; a refused grant
(wrong secret, disabled account) is raised, not retried in a loop.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from gov.identity.v1 import identity_pb2, identity_pb2_grpc
from govkit.errors import Unavailable

# Fetch a new token when less than this part of the old one's lifetime is left.
_REFRESH_FRACTION = 0.2


class ServiceTokens:
    def __init__(
        self,
        identity: grpc.aio.Channel,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._stub = identity_pb2_grpc.IdentityServiceStub(identity)
        self._client_id = client_id
        self._secret = client_secret
        self._timeout = timeout
        self._token = ""
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid access token, fetched or refreshed as needed."""
        if self._token and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if not self._token or time.monotonic() >= self._refresh_at:
                await self._fetch()
        return self._token

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the token."""
        return (("authorization", f"Bearer {await self.token()}"),)

    def invalidate(self) -> None:
        """Forget the token (after an UNAUTHENTICATED answer: revoked or rotated keys)."""
        self._token = ""

    async def _fetch(self) -> None:
        request = identity_pb2.IssueServiceTokenRequest(client_id=self._client_id, client_secret=self._secret)
        try:
            pair = await self._stub.IssueServiceToken(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            # A still valid token outlives a short identity outage.
            if self._token and time.monotonic() < self._expires_at:
                return
            raise Unavailable(f"no service token from identity: {exc.code().name}") from None
        now = time.monotonic()
        lifetime = max(int(pair.expires_in), 1)
        self._token = str(pair.access_token)
        self._expires_at = now + lifetime
        self._refresh_at = now + lifetime * (1 - _REFRESH_FRACTION)
