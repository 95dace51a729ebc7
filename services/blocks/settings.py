"""Blocks' configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from pydantic import Field

from govkit.config import ServiceSettings


class BlocksSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.data/blocks.db"
    grpc_port: int = Field(50052, ge=1, le=65535)
    # Blocks verifies callers' tokens with identity's published keys.
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    # Where import files are spooled while they are imported (up to 200 MiB each, deleted at once);
    # empty: the system's temporary directory (TMPDIR, else /tmp).
    import_spool_dir: str = ""
