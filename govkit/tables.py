"""Tables every service database carries: the outbox and the processed-event log."""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, MetaData, String, Table, Text

from govkit.db import SEQ, UtcDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("seq", SEQ, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("data", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
        Index("ix_outbox_unpublished", "published_at", "seq"),
    )


def processed_events_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False),
    )


def idempotency_table(metadata: MetaData) -> Table:
    """Client request ids of mutating calls (govkit.idempotency): what each request was and answered."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("scope", String(100), primary_key=True),  # method + caller
        Column("request_id", String(100), primary_key=True),
        Column("resource", String(200), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        # Both NULL on rows written before v2 (migration_ops.add_idempotency_results_v2).
        Column("fingerprint", String(64), nullable=True),  # SHA-256 of the request without its key
        Column("response", LargeBinary, nullable=True),  # the serialized response message
    )


class PlatformTables:
    """The shared tables bound to one service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox = outbox_table(metadata)
        self.processed_events = processed_events_table(metadata)
        self.idempotency = idempotency_table(metadata)
