"""Settings from environment variables, validated at start-up.

Every component subclasses `BaseSettings` below. A missing or malformed variable
stops the process with a message naming the variable, never a traceback.
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings as _PydanticSettings
from pydantic_settings import SettingsConfigDict

ENV_PREFIX = "GOV_"


class BaseSettings(_PydanticSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Prometheus /metrics on a port of its own (govkit.metrics): unset = none, 0 = any free port.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from other pods


class ServiceSettings(BaseSettings):
    """What every gRPC service needs: its database, the message bus and a port."""

    database_url: str = Field(
        ..., description="SQLAlchemy async URL (sqlite+aiosqlite:// or postgresql+asyncpg://)"
    )
    nats_url: str = Field("nats://127.0.0.1:4222", pattern=r"^(nats|tls)://")
    # Connections each replica keeps open to PostgreSQL; a burst may open half as many again. Every
    # service and replica counts against the server's max_connections (100 by default): five
    # services at the default take at most 75. SQLite ignores it.
    db_pool_size: int = Field(10, ge=1, le=200)
    grpc_host: str = "0.0.0.0"  # noqa: S104 - a service must be reachable from other pods
    grpc_port: int = Field(50051, ge=1, le=65535)
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    # A client's connection is closed (GOAWAY) after this long, so clients resolve the peer's name
    # again and spread over replicas added since; in-flight calls get the grace to finish. 0 = never.
    grpc_max_connection_age_seconds: float = Field(300.0, ge=0)
    grpc_max_connection_age_grace_seconds: float = Field(30.0, ge=0)
    # Where to fetch the JWKS from; empty means "this process is identity and signs its own".
    identity_addr: str = ""
    # Processed event ids and client request ids are kept this long, then pruned. Longer than
    # JetStream's duplicate window (10 min) and than any client retries a request or a consumer
    # may be redelivered an event (a consumer down for longer would apply old events again).
    idempotency_retention_days: float = Field(7.0, ge=1)
    # Published outbox rows are kept this long (for looking into a problem), then pruned.
    outbox_retention_hours: float = Field(24.0, ge=1)
    housekeeping_interval_seconds: float = Field(3600.0, gt=0)
    # Rows deleted per transaction: keeps each one short (SQLite has one writer).
    housekeeping_batch: int = Field(1000, ge=1, le=100_000)


S = TypeVar("S", bound=_PydanticSettings)


def load(settings_cls: type[S]) -> S:
    """Build settings from the environment or exit with one line per bad variable."""
    try:
        return settings_cls()
    except ValidationError as exc:
        prefix = settings_cls.model_config.get("env_prefix", "")
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            lines.append(f"  {prefix}{field.upper()}: {err['msg']}")
        sys.stderr.write("configuration error:\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None
