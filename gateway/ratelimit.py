"""Rate limits on credential exchanges, per client address and per login.

Each password login, client-credentials grant and Open311 api_key exchange costs identity an
argon2 hash (tens of milliseconds of a core and megabytes of memory): unlimited, a single client
could keep identity's cores busy. Buckets refill continuously (`limit` per `window`), live in this
process (each gateway replica counts alone) and hold at most `MAX_KEYS` keys, least recently used
dropped first. The client address is the TCP peer, or what X-Forwarded-For says when the peer is
a trusted proxy (GOV_TRUSTED_PROXIES).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import Request

from gateway.settings import GatewaySettings
from govkit.auth.logins import CLIENT_ADDRESS_KEY, address_key, login_key

MAX_KEYS = 100_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBuckets:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.rate = limit / window  # tokens per second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """Spend one token of `key`: 0 if there was one, else the seconds until there will be."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0


@dataclass
class AuthLimits:
    per_address: TokenBuckets | None
    per_login: TokenBuckets | None
    trusted: list[Network]

    @classmethod
    def of(cls, settings: GatewaySettings) -> AuthLimits:
        window = settings.auth_rate_window_seconds
        return cls(
            TokenBuckets(settings.auth_rate_per_address, window) if settings.auth_rate_per_address else None,
            TokenBuckets(settings.auth_rate_per_login, window) if settings.auth_rate_per_login else None,
            settings.trusted_proxy_networks,
        )


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client: the peer, unless it is a trusted proxy; then the nearest untrusted hop.

    X-Forwarded-For is read from the right (each proxy appends the address it saw), stopping
    at the first address that is not a trusted proxy: everything left of it the client wrote.
    """
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    candidate = peer
    for hop in reversed(hops):
        try:
            candidate = str(ipaddress.ip_address(hop))
        except ValueError:
            return candidate  # garbage beyond this point: the last hop we could read is the client
        if not _trusted(candidate, trusted):
            return candidate
    return candidate


def _limits(request: Request) -> AuthLimits:
    limits: AuthLimits | None = getattr(request.app.state, "auth_limits", None)
    if limits is None:
        limits = request.app.state.auth_limits = AuthLimits.of(request.app.state.upstreams.settings)
    return limits


def request_client(request: Request) -> str:
    """The client address of this request (computed once)."""
    cached: str | None = getattr(request.state, "client_address", None)
    if cached is None:
        peer = request.client.host if request.client else ""
        forwarded = request.headers.getlist("x-forwarded-for")
        cached = request.state.client_address = client_address(peer, forwarded, _limits(request).trusted)
    return cached


def client_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """gRPC metadata telling identity whose attempt this is (its lockout counts per address)."""
    address = request_client(request)
    return ((CLIENT_ADDRESS_KEY, address),) if address_key(address) else ()


def check_credential_rate(request: Request, *, login: str = "", client_id: str = "") -> int | None:
    """Count a credential exchange; None if allowed, else the seconds to wait (Retry-After).

    The address is charged first and a refused request stops there: requests an address limit
    already turned away must not use up the login's own allowance.
    """
    limits = _limits(request)
    wait = 0.0
    if limits.per_address is not None:
        address = request_client(request)
        wait = limits.per_address.take(f"addr:{address_key(address) or address}")
    if not wait and limits.per_login is not None and (login or client_id):
        key = f"login:{login_key(login)}" if login else f"client:{client_id[:64]}"
        wait = limits.per_login.take(key)
    return math.ceil(wait) if wait > 0 else None
