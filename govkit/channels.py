"""gRPC client channels between components, quick to come back after a peer restarts.

gRPC's default reconnect backoff starts at 1 s and grows by 1.6x up to 2 minutes: after a 3 s
restart of a service its callers still failed for another 2.5 s, waiting out the backoff. These
channels try again every 100-200 ms while a peer is away, and a read (safe to send whenever the
peer is back) waits a short bound for the channel to be ready instead of failing at once while it
reconnects. Writes still fail fast: the caller decides whether to retry them.

Every channel from one component to another (gateway -> services, service -> identity/blocks) is
made here, so they all behave the same.

Traffic spreads over every replica of a peer: a DNS name is resolved by gRPC itself (`dns:///`),
which on Kubernetes means a headless Service lists each pod, and calls go round-robin over one
connection to each. Through a ClusterIP Service, one long-lived HTTP/2 connection per client pinned
all of a client's calls to one pod, so replicas the autoscaler added got almost none. Servers end
connections after `max_connection_age` (govkit.grpc_server), so clients resolve again and find
new pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from govkit import tls

RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    # Attempts while a peer is away are at most this far apart (plus 20% jitter): the time a caller
    # may lag behind a peer that is back. A refused connection on a LAN costs next to nothing.
    ("grpc.max_reconnect_backoff_ms", 200),
    # How long one connection attempt may take (default 20 s): bounds the stall on an address that
    # drops packets instead of refusing, e.g. a pod that is gone.
    ("grpc.min_reconnect_backoff_ms", 2000),
)

# Calls go to every address the name resolves to in turn, not all to the first.
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

# How long a read waits for a reconnecting channel before it fails with UNAVAILABLE.
READY_WAIT_SECONDS = 1.0

# Reads by the API conventions (AIP standard and custom methods): nothing changes if they are
# sent once more, or later than asked. (Health checks are not among them: they report the state
# now, and a readiness probe must not wait.)
SAFE_METHOD_PREFIXES = ("Get", "List", "BatchGet", "Search", "Locate", "Audit")


def is_safe(method: str | bytes) -> bool:
    """`/gov.tickets.v1.TicketsService/GetTicket` -> True; CreateTicket, TransitionTicket, and
    `/grpc.health.v1.Health/Check` -> False."""
    name = method.decode() if isinstance(method, bytes) else method
    return name.rsplit("/", 1)[-1].startswith(SAFE_METHOD_PREFIXES)


class _ReadsWaitForReady(grpc.aio.UnaryUnaryClientInterceptor):
    """Holds a read until its channel is READY, for at most `bound` seconds (within its deadline)."""

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self.channel: grpc.aio.Channel | None = None

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        channel = self.channel
        if channel is not None and is_safe(details.method):
            state = channel.get_state(try_to_connect=True)
            if state != grpc.ChannelConnectivity.READY:
                bound = self.bound if details.timeout is None else min(self.bound, details.timeout / 2)
                started = time.monotonic()
                # Still away after the bound: the call goes on and fails fast with UNAVAILABLE.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(channel.channel_ready(), bound)
                if details.timeout is not None:
                    spent = time.monotonic() - started
                    # ClientCallDetails is a namedtuple at runtime; the stubs declare a plain class.
                    details = details._replace(timeout=max(details.timeout - spent, 0.001))  # type: ignore[attr-defined]
        return await continuation(details, request)


def target(address: str) -> str:
    """The gRPC target for a peer's address: `blocks:50051` -> `dns:///blocks:50051` (every address
    of the name, re-resolved when connections end); an IP address or a target with a scheme
    (`dns:///`, `ipv4:a:p,b:p`, `unix:`) is used as it is."""
    if ":/" in address or address.startswith(("ipv4:", "ipv6:", "unix:", "unix-abstract:")):
        return address
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"dns:///{address}"
    return address


def to_peer(
    address: str,
    settings: tls.GrpcTls,
    *,
    options: Sequence[tuple[str, Any]] = (),
    ready_wait: float = READY_WAIT_SECONDS,
) -> grpc.aio.Channel:
    """A channel to another component: TLS verified against GOV_TLS_GRPC_CA_FILE when that is set
    (govkit.tls), plaintext otherwise. Every component-to-component channel is made here."""
    credentials = tls.channel_credentials(settings)
    if credentials is None:
        return insecure_channel(address, options=options, ready_wait=ready_wait)
    return secure_channel(address, credentials, options=options, ready_wait=ready_wait)


def insecure_channel(
    address: str,
    *,
    options: Sequence[tuple[str, Any]] = (),
    ready_wait: float = READY_WAIT_SECONDS,
) -> grpc.aio.Channel:
    """A plaintext channel to another component of the platform."""
    return _channel(address, None, options, ready_wait)


def secure_channel(
    address: str,
    credentials: grpc.ChannelCredentials,
    *,
    options: Sequence[tuple[str, Any]] = (),
    ready_wait: float = READY_WAIT_SECONDS,
) -> grpc.aio.Channel:
    """A TLS channel to another component of the platform, with the same behaviour as the plaintext one."""
    return _channel(address, credentials, options, ready_wait)


def _channel(
    address: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    ready_wait: float,
) -> grpc.aio.Channel:
    waiter = _ReadsWaitForReady(ready_wait)
    all_options = [*RECONNECT_OPTIONS, ("grpc.service_config", ROUND_ROBIN), *options]
    # Looked up at call time, so OpenTelemetry's instrumentation of them adds its interceptors too.
    if credentials is None:
        channel = grpc.aio.insecure_channel(target(address), options=all_options, interceptors=[waiter])
    else:
        channel = grpc.aio.secure_channel(
            target(address), credentials, options=all_options, interceptors=[waiter]
        )
    waiter.channel = channel
    return channel
