"""Identity's configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from govkit.auth.revocations import MAX_ACCESS_TOKEN_TTL_SECONDS
from govkit.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.data/identity.db"
    # Encrypts the private signing keys at rest. Required: there is no safe default.
    signing_key_passphrase: SecretStr = Field(..., min_length=16)
    # Verifiers remember a revocation for the longest lifetime allowed here.
    access_token_ttl_seconds: int = Field(300, ge=30, le=MAX_ACCESS_TOKEN_TTL_SECONDS)
    refresh_token_ttl_seconds: int = Field(30 * 86400, ge=300, le=180 * 86400)
    key_rotation_days: int = Field(30, ge=1, le=365)
    # Per login and client address: `threshold` failures are free, then the next attempt waits
    # `duration` seconds, doubling with each further failure up to `max_delay`; a quiet `window`
    # after the wait starts the count again.
    lockout_threshold: int = Field(5, ge=1, le=100)
    lockout_window_seconds: int = Field(900, ge=1)
    lockout_duration_seconds: int = Field(30, ge=1)
    lockout_max_delay_seconds: int = Field(900, ge=1)
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65536, ge=1024, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(1, ge=1, le=16)
    # Hashes computed at once (each takes argon2_memory_kib); 0 = the CPUs the process may use.
    argon2_threads: int = Field(0, ge=0, le=64)
