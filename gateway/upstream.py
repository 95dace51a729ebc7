"""gRPC channels to the services, and calls that carry the caller's identity and request id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from gateway.problems import Problem
from gateway.settings import GatewaySettings
from gov.blocks.v1 import blocks_pb2_grpc
from gov.identity.v1 import identity_pb2_grpc
from gov.notifications.v1 import notifications_pb2_grpc
from gov.points.v1 import points_pb2_grpc
from gov.tickets.v1 import tickets_pb2_grpc
from govkit import channels
from govkit.auth.principal import Principal
from govkit.auth.tokens import GrpcJwksSource, TokenVerifier
from govkit.errors import DomainError, Unavailable

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)

R = TypeVar("R")


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        # govkit's channels: reconnect within a quarter second of a service coming back, and reads
        # wait briefly for a reconnecting channel instead of failing at once.
        self.identity_channel = channels.insecure_channel(settings.identity_addr)
        self.identity = identity_pb2_grpc.IdentityServiceStub(self.identity_channel)
        self.verifier = TokenVerifier(GrpcJwksSource(self.identity_channel), issuer=settings.token_issuer)
        # Pages of nodes with boundaries come back large. (Imports go up in 1 MiB chunks.)
        self.blocks_channel = channels.insecure_channel(
            settings.blocks_addr, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self.blocks = blocks_pb2_grpc.BlocksServiceStub(self.blocks_channel)
        self.tickets_channel = channels.insecure_channel(settings.tickets_addr)
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(self.tickets_channel)
        self.points_channel = channels.insecure_channel(settings.points_addr)
        self.points = points_pb2_grpc.PointsServiceStub(self.points_channel)
        # Not among the readiness targets: the gateway serves everything else without it.
        self.notifications_channel = channels.insecure_channel(settings.notifications_addr)
        self.notifications = notifications_pb2_grpc.NotificationsServiceStub(self.notifications_channel)

    @property
    def health_targets(self) -> dict[str, tuple[grpc.aio.Channel, str]]:
        """Upstreams /readyz checks: name -> (channel, health service name)."""
        return {
            "identity": (self.identity_channel, "gov.identity.v1.IdentityService"),
            "blocks": (self.blocks_channel, "gov.blocks.v1.BlocksService"),
            "tickets": (self.tickets_channel, "gov.tickets.v1.TicketsService"),
            "points": (self.points_channel, "gov.points.v1.PointsService"),
        }

    async def close(self) -> None:
        await self.identity_channel.close()
        await self.blocks_channel.close()
        await self.tickets_channel.close()
        await self.points_channel.close()
        await self.notifications_channel.close()


@dataclass(frozen=True)
class Caller:
    principal: Principal
    token: str


def upstreams(request: Request) -> Upstreams:
    return request.app.state.upstreams


async def authenticated(request: Request, token: str | None = Depends(oauth2_scheme)) -> Caller:
    """Verify the bearer token locally against the cached JWKS."""
    if not token:
        raise Problem(
            401, "missing bearer token", slug="unauthenticated", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        principal = await upstreams(request).verifier.verify(token)
    except Unavailable as exc:
        raise Problem(503, str(exc), slug="unavailable") from None
    except DomainError as exc:
        raise Problem(
            401,
            str(exc),
            slug="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    return Caller(principal, token)


async def call(
    request: Request,
    method: Callable[..., Awaitable[R]],
    message: Any,
    caller: Caller | None = None,
    *,
    deadline_seconds: float | None = None,
    extra_metadata: tuple[tuple[str, str], ...] = (),
) -> R:
    """One upstream call, with the caller's token (services verify it again) and the request id."""
    metadata: list[tuple[str, str]] = [("x-request-id", request.state.request_id), *extra_metadata]
    if caller is not None:
        metadata.append(("authorization", f"Bearer {caller.token}"))
    timeout = deadline_seconds or upstreams(request).settings.upstream_timeout
    return await method(message, metadata=tuple(metadata), timeout=timeout)


CallerDep = Annotated[Caller, Depends(authenticated)]
