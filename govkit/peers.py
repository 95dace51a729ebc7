"""Questions one service asks another on the caller's behalf, with the caller's own token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from gov.identity.v1 import identity_pb2, identity_pb2_grpc
from govkit.auth.principal import Principal
from govkit.errors import InvalidArgument, Unavailable


def on_behalf_of(principal: Principal) -> tuple[tuple[str, str], ...]:
    """Metadata for a call made as the caller, so the other service applies the caller's scope."""
    return (("authorization", f"Bearer {principal.token}"),)


async def ask(
    method: Callable[..., Awaitable[Any]],
    request: Any,
    principal: Principal,
    *,
    peer: str,
    refused: str,
    field: str,
) -> Any:
    """One call as the caller. What the other service cannot find or will not show the caller is the
    caller's bad input (INVALID_ARGUMENT naming `field`); anything else is UNAVAILABLE."""
    try:
        return await method(request, metadata=on_behalf_of(principal), timeout=5)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            raise InvalidArgument(refused, field=field) from None
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument(exc.details() or refused, field=field) from None
        raise Unavailable(f"{peer} service: {exc.code().name}") from None


async def require_user(
    identity: identity_pb2_grpc.IdentityServiceStub, principal: Principal, user_id: str, field: str
) -> None:
    """The person exists and the caller can see them; INVALID_ARGUMENT naming `field` if not."""
    await ask(
        identity.GetUser,
        identity_pb2.GetUserRequest(name=f"users/{user_id}"),
        principal,
        peer="identity",
        refused="no such user within the caller's scope",
        field=field,
    )
