"""api_key: `<client_id>:<client_secret>` of an identity service account.

The gateway exchanges it (IssueServiceToken) for an access token, kept in-process under the key's
SHA-256 until shortly before it expires, and calls the tickets service with that token; the service
decides what the account may see (the requests it filed). The key itself is never logged or kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from fastapi import Request

from gateway.open311.cache import TtlCache, app_cache
from gateway.open311.errors import Open311Error
from gateway.ratelimit import check_credential_rate, client_metadata
from gateway.upstream import Caller, call, upstreams
from gov.identity.v1 import identity_pb2
from govkit.errors import DomainError, Unavailable

R = TypeVar("R")
TOKEN_CACHE_SIZE = 1024
# A token is dropped this long before it expires (at most a fifth of its life), so that it is
# not refused mid-request.
EXPIRY_MARGIN_SECONDS = 60.0
_REFUSALS = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _tokens(request: Request) -> TtlCache[Caller]:
    return app_cache(request, "open311_tokens", TOKEN_CACHE_SIZE)


def token_lifetime(expires_in: float) -> float:
    """How long a token that expires in `expires_in` seconds is cached."""
    return expires_in - min(EXPIRY_MARGIN_SECONDS, expires_in / 5)


async def _exchange(request: Request, api_key: str) -> Caller:
    client_id, colon, client_secret = api_key.partition(":")
    if not colon or not client_id or not client_secret:
        raise Open311Error(403, "api_key: invalid (expected <client_id>:<client_secret>)")
    retry_after = check_credential_rate(request, client_id=client_id)
    if retry_after is not None:
        raise Open311Error(
            429,
            f"api_key: too many attempts; try again in {retry_after} seconds",
            {"Retry-After": str(retry_after)},
        )
    try:
        pair = await call(
            request,
            upstreams(request).identity.IssueServiceToken,
            identity_pb2.IssueServiceTokenRequest(client_id=client_id, client_secret=client_secret),
            extra_metadata=client_metadata(request),
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() in _REFUSALS:
            raise Open311Error(403, "api_key: invalid") from None
        raise
    try:
        principal = await upstreams(request).verifier.verify(pair.access_token)
    except Unavailable:
        raise Open311Error(503, "the service is unavailable, try again") from None
    except DomainError:
        raise Open311Error(403, "api_key: invalid") from None
    caller = Caller(principal, pair.access_token)
    _tokens(request).put(key_digest(api_key), caller, token_lifetime(pair.expires_in))
    return caller


class Account:
    """The service account an api_key stands for, for one request."""

    def __init__(self, request: Request, api_key: str) -> None:
        self.request = request
        self._api_key = api_key
        self._digest = key_digest(api_key)
        self.caller: Caller | None = None

    def __repr__(self) -> str:
        return "Account(api_key=<hidden>)"

    async def authenticate(self) -> Caller:
        if self.caller is None:
            self.caller = _tokens(self.request).get(self._digest) or await _exchange(
                self.request, self._api_key
            )
        return self.caller

    async def call(self, method: Callable[..., Awaitable[R]], message: Any) -> R:
        caller = await self.authenticate()
        try:
            return await call(self.request, method, message, caller)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise
        # The token was refused (revoked, keys rotated): once more with a fresh one.
        _tokens(self.request).drop(self._digest)
        self.caller = None
        return await call(self.request, method, message, await self.authenticate())


class Anonymous:
    """Calls without a token, for the public resources."""

    def __init__(self, request: Request) -> None:
        self.request = request

    async def call(self, method: Callable[..., Awaitable[R]], message: Any) -> R:
        return await call(self.request, method, message)


async def account(request: Request, api_key: str | None) -> Account:
    """The api_key's account, its token in hand; 403 if the key is missing or refused."""
    if not api_key:
        raise Open311Error(403, "api_key: required")
    found = Account(request, api_key)
    await found.authenticate()
    return found
