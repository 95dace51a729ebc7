"""Tickets' configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from pydantic import Field

from govkit.config import ServiceSettings


class TicketsSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.data/tickets.db"
    grpc_port: int = Field(50053, ge=1, le=65535)
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    # Points are located, and households found, through the blocks service.
    blocks_addr: str = Field("127.0.0.1:50052", min_length=3)
    # How often each replica looks for breached deadlines; any number of replicas may run.
    sweep_interval_seconds: float = Field(30.0, gt=0, le=3600)
    # How long after resolution a dissatisfied reporter may reopen.
    reopen_window_days: int = Field(7, ge=0, le=365)
    # Likely duplicates: same category, within this distance (or the same household), this recent.
    duplicate_radius_m: float = Field(150.0, gt=0, le=5000)
    duplicate_window_hours: int = Field(72, ge=1, le=24 * 90)
