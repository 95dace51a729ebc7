"""Gateway configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from govkit.auth.tokens import DEFAULT_ISSUER
from govkit.config import BaseSettings


class GatewaySettings(BaseSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    blocks_addr: str = Field("127.0.0.1:50052", min_length=3)
    tickets_addr: str = Field("127.0.0.1:50053", min_length=3)
    points_addr: str = Field("127.0.0.1:50054", min_length=3)
    notifications_addr: str = Field("127.0.0.1:50055", min_length=3)
    token_issuer: str = DEFAULT_ISSUER
    # Comma-separated origins allowed to call the API from a browser; empty allows none.
    cors_origins: str = ""
    # Seconds a gRPC call from the gateway may take.
    upstream_timeout: float = Field(10.0, gt=0, le=120)
    # Largest request body a route takes unless it declares its own limit (params.body_limit).
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # Swagger UI at /docs; production may switch it off (/openapi.json stays for API clients).
    docs_enabled: bool = True
    # Identity's token revocations arrive over NATS (the deny-list every verifier keeps).
    nats_url: str = Field("nats://127.0.0.1:4222", pattern=r"^(nats|tls)://")
    # Comma-separated CIDRs of reverse proxies in front of the gateway. X-Forwarded-For is believed
    # only from these; empty means the client is whoever opened the connection.
    trusted_proxies: str = ""
    # Credential exchanges (password, refresh, client credentials, Open311 api_key) each cost an
    # argon2 hash or a database round trip: at most this many per window per client address and
    # per login or client id; 0 switches a limit off.
    auth_rate_per_address: int = Field(60, ge=0)
    auth_rate_per_login: int = Field(10, ge=0)
    auth_rate_window_seconds: float = Field(60.0, gt=0, le=3600)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (o.strip() for o in value.split(","))):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin such as https://ops.example.org")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for cidr in filter(None, (c.strip() for c in value.split(","))):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an address or CIDR such as 10.0.0.0/8") from None
        return value

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(c.strip(), strict=False)
            for c in self.trusted_proxies.split(",")
            if c.strip()
        ]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
