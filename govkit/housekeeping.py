"""Pruning of the platform tables that would otherwise only grow.

Processed event ids (`processed_events`) and client request ids (`idempotency_keys`) only have to
outlive every redelivery and every client retry; published outbox rows only help when looking into
a problem. Each replica prunes them now and then in short transactions of a bounded number of rows,
so SQLite's single writer is never held for long; on PostgreSQL the replicas skip rows another one
is deleting instead of waiting for (or deadlocking with) it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, delete, select, tuple_

from govkit.config import ServiceSettings
from govkit.db import Database, rowcount, utcnow
from govkit.tables import PlatformTables

log = logging.getLogger(__name__)

# The first round comes this soon after start (or after one interval, if that is shorter), so a
# service restarted more often than the interval still prunes.
FIRST_ROUND_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Retention:
    table: Table
    kept: dt.timedelta
    column: str  # when a row was written (or published): it goes once this is older than `kept`

    def expired(self, now: dt.datetime) -> ColumnElement[bool]:
        return self.table.c[self.column] < now - self.kept


class Housekeeping:
    def __init__(self, db: Database, tables: PlatformTables, settings: ServiceSettings) -> None:
        self.db = db
        self.interval = settings.housekeeping_interval_seconds
        self.batch = settings.housekeeping_batch
        kept = dt.timedelta(days=settings.idempotency_retention_days)
        self.retentions = (
            Retention(tables.processed_events, kept, "processed_at"),
            Retention(tables.idempotency, kept, "created_at"),
            # Only published rows have a `published_at`; pending ones (NULL) never match.
            Retention(tables.outbox, dt.timedelta(hours=settings.outbox_retention_hours), "published_at"),
        )

    async def run(self) -> None:
        await asyncio.sleep(min(self.interval, FIRST_ROUND_AFTER_SECONDS))
        while True:
            try:
                pruned = await self.prune()
                if any(pruned.values()):
                    log.info("pruned old rows", extra={"pruned": pruned})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping round failed; trying again next round")
            await asyncio.sleep(self.interval)

    async def prune(self) -> dict[str, int]:
        """Delete every expired row, a batch per transaction; returns how many went, per table."""
        now = utcnow()
        return {r.table.name: await self._prune(r.table, r.expired(now)) for r in self.retentions}

    async def _prune(self, table: Table, expired: ColumnElement[bool]) -> int:
        keys = list(table.primary_key.columns)
        key = keys[0] if len(keys) == 1 else tuple_(*keys)
        doomed = select(*keys).where(expired).limit(self.batch).with_for_update(skip_locked=True)
        total = 0
        while True:
            async with self.db.transaction() as session:
                deleted = rowcount(await session.execute(delete(table).where(key.in_(doomed))))
            total += deleted
            if deleted < self.batch:
                return total
            await asyncio.sleep(0)  # let waiting writers in between batches
