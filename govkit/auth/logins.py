"""The canonical form of a login, shared by identity (lockout) and the gateway (rate limits).

Every spelling of one phone number maps to one key, so neither the lockout nor a rate limit
can be sidestepped by writing `138 1234 5678` instead of `13812345678`.
"""

from __future__ import annotations

import ipaddress

from govkit.errors import InvalidArgument
from govkit.validation import normalize_phone

MAX_LOGIN_KEY = 100
# gRPC metadata in which the gateway tells identity whose login attempt it forwards.
CLIENT_ADDRESS_KEY = "x-client-address"


def login_key(login: str) -> str:
    """The phone in E.164, else the lower-cased text (at most 100 characters)."""
    try:
        return normalize_phone(login)
    except InvalidArgument:
        return login.strip().lower()[:MAX_LOGIN_KEY]


def address_key(address: str) -> str | None:
    """The key a client address is counted under, or None if it is not an IP address.

    An IPv6 client usually holds a whole /64 and can pick any address in it, so it counts as one.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
