"""Settings from environment variables, validated at start-up.

Every component subclasses `BaseSettings` below. A missing or malformed variable
stops the process with a message naming the variable, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings as _PydanticSettings
from pydantic_settings import SettingsConfigDict

from govkit import tls
from govkit.auth.tokens import DEFAULT_ISSUER

ENV_PREFIX = "GOV_"


class BaseSettings(_PydanticSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Prometheus /metrics on a port of its own (govkit.metrics): unset = none, 0 = any free port.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    # TLS from mounted files (govkit.tls; the Helm chart's `tls.*` values set them). gRPC: this
    # component's certificate and key (served, and shown to servers that require client auth) and
    # the CA that signed its peers'. All three or none.
    tls_grpc_cert_file: str | None = None
    tls_grpc_key_file: str | None = None
    tls_grpc_ca_file: str | None = None
    # Servers also require a client certificate signed by the CA (tokens authenticate callers anyway).
    tls_grpc_client_auth: bool = False
    # The CA that signed the PostgreSQL server's certificate: connections verify it and its name.
    tls_postgres_ca_file: str | None = None
    # The CA that signed the NATS server's certificate.
    tls_nats_ca_file: str | None = None

    @field_validator("tls_grpc_ca_file", "tls_postgres_ca_file", "tls_nats_ca_file")
    @classmethod
    def _ca_readable(cls, value: str | None) -> str | None:
        if value:
            tls.check_ca(value)
        return value or None

    @field_validator("tls_grpc_cert_file", "tls_grpc_key_file")
    @classmethod
    def _file_readable(cls, value: str | None) -> str | None:
        if value:
            try:
                with open(value, "rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value or None

    @model_validator(mode="after")
    def _grpc_tls_complete(self) -> BaseSettings:
        files = {
            "TLS_GRPC_CERT_FILE": self.tls_grpc_cert_file,
            "TLS_GRPC_KEY_FILE": self.tls_grpc_key_file,
            "TLS_GRPC_CA_FILE": self.tls_grpc_ca_file,
        }
        if any(files.values()):
            absent = [f"{ENV_PREFIX}{name}" for name, value in files.items() if not value]
            if absent:
                raise ValueError(f"{', '.join(absent)}: required when any {ENV_PREFIX}TLS_GRPC_* file is set")
            assert self.tls_grpc_cert_file and self.tls_grpc_key_file  # checked above
            try:
                tls.check_pair(self.tls_grpc_cert_file, self.tls_grpc_key_file)
            except ValueError as exc:
                raise ValueError(
                    f"{ENV_PREFIX}TLS_GRPC_CERT_FILE/{ENV_PREFIX}TLS_GRPC_KEY_FILE: {exc}"
                ) from None
        return self


class ServiceSettings(BaseSettings):
    """What every gRPC service needs: its database, the message bus and a port."""

    database_url: str = Field(
        ..., description="SQLAlchemy async URL (sqlite+aiosqlite:// or postgresql+asyncpg://)"
    )
    nats_url: str = Field("nats://127.0.0.1:4222", pattern=r"^(nats|tls)://")
    # Connections each replica keeps open to PostgreSQL; a burst may open half as many again, and
    # the hot reads (govkit.hotreads) a third as many more (at least 2). Every service and replica
    # counts against the server's max_connections (100 by default): five services at the default
    # take at most 90. SQLite ignores it.
    db_pool_size: int = Field(10, ge=1, le=200)
    # Fail (rather than log) a call that asks for a second connection while it holds a write
    # transaction (govkit.db.Database._check_nesting). The test suite turns it on.
    db_forbid_nested_connections: bool = False
    grpc_host: str = "0.0.0.0"  # noqa: S104 - a service must be reachable from other pods
    # The event loop `serve` runs on: uvloop costs less CPU per gRPC call than asyncio's own loop
    # (bench/ceiling.py); asyncio stays selectable.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    grpc_port: int = Field(50051, ge=1, le=65535)
    # Plaintext grpc.health.v1 (and nothing else) on a port of its own, for Kubernetes' gRPC probes,
    # which cannot speak TLS. Unset: grpc_port + 1000 when gRPC TLS is on, none otherwise; 0 = any
    # free port. Without TLS the gRPC port itself answers health checks.
    grpc_health_port: int | None = Field(None, ge=0, le=65535)
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    # A client's connection is closed (GOAWAY) after this long, so clients resolve the peer's name
    # again and spread over replicas added since; in-flight calls get the grace to finish. 0 = never.
    grpc_max_connection_age_seconds: float = Field(300.0, ge=0)
    grpc_max_connection_age_grace_seconds: float = Field(30.0, ge=0)
    # Where to fetch the JWKS from; empty means "this process is identity and signs its own".
    identity_addr: str = ""
    # The `iss` that identity signs into access tokens and every service checks.
    token_issuer: str = DEFAULT_ISSUER
    # Processed event ids and client request ids are kept this long, then pruned. Longer than
    # JetStream's duplicate window (10 min) and than any client retries a request or a consumer
    # may be redelivered an event (a consumer down for longer would apply old events again).
    idempotency_retention_days: float = Field(7.0, ge=1)
    # Published outbox rows are kept this long (for looking into a problem), then pruned.
    outbox_retention_hours: float = Field(24.0, ge=1)
    housekeeping_interval_seconds: float = Field(3600.0, gt=0)
    # Rows deleted per transaction: keeps each one short (SQLite has one writer).
    housekeeping_batch: int = Field(1000, ge=1, le=100_000)

    @property
    def health_port(self) -> int | None:
        """Where the plaintext health server listens (GOV_GRPC_HEALTH_PORT), or None for none."""
        if self.grpc_health_port is not None:
            return self.grpc_health_port
        if tls.grpc_enabled(self):
            return self.grpc_port + 1000 if self.grpc_port <= 64535 else self.grpc_port - 1000
        return None


S = TypeVar("S", bound=_PydanticSettings)


def load(settings_cls: type[S]) -> S:
    """Build settings from the environment or exit with one line per bad variable."""
    try:
        return settings_cls()
    except ValidationError as exc:
        prefix = settings_cls.model_config.get("env_prefix", "")
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            if not field:  # a check across variables: its message names them
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
                continue
            lines.append(f"  {prefix}{field.upper()}: {err['msg']}")
        sys.stderr.write("configuration error:\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None
