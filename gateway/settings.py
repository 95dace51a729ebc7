"""Gateway configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from pydantic import Field, field_validator

from govkit.auth.tokens import DEFAULT_ISSUER
from govkit.config import BaseSettings


class GatewaySettings(BaseSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    blocks_addr: str = Field("127.0.0.1:50052", min_length=3)
    tickets_addr: str = Field("127.0.0.1:50053", min_length=3)
    token_issuer: str = DEFAULT_ISSUER
    # Comma-separated origins allowed to call the API from a browser; empty allows none.
    cors_origins: str = ""
    # Seconds a gRPC call from the gateway may take.
    upstream_timeout: float = Field(10.0, gt=0, le=120)
    # Largest request body a route takes unless it declares its own limit (params.body_limit).
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # Swagger UI at /docs; production may switch it off (/openapi.json stays for API clients).
    docs_enabled: bool = True

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (o.strip() for o in value.split(","))):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin such as https://ops.example.org")
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
