"""Points' configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from pydantic import Field

from govkit.config import ServiceSettings


class PointsSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.data/points.db"
    grpc_port: int = Field(50054, ge=1, le=65535)
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    # Block staff rights are read live from blocks on every call that needs them.
    blocks_addr: str = Field("127.0.0.1:50052", min_length=3)
    # How often each replica expires points, voids timed-out pending entries and sends notices.
    sweep_interval_seconds: float = Field(60.0, gt=0, le=3600)
    # An award waiting for the supervisor voids itself after this long.
    approval_timeout_days: int = Field(30, ge=1, le=365)
    # A redemption not collected at the counter within this long is voided and its stock returned.
    redemption_hold_hours: float = Field(72.0, gt=0, le=24 * 90)
    # Residents are told this long before their points expire.
    expiry_notice_days: int = Field(30, ge=0, le=365)
