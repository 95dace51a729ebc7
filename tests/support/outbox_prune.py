"""Housekeeping on a database holding an event published two days ago; prints whether its first
round prunes it (retention 24 h) and what the event loop's clock read.

    python -m tests.support.outbox_prune DATABASE_URL NATS_URL

Run by tests/integration/test_fresh_boot.py under a monotonic clock that starts near zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import types
import uuid

import nats
from sqlalchemy import MetaData, func, insert, select

from govkit.db import Database, utcnow
from govkit.housekeeping import Housekeeping
from govkit.tables import PlatformTables


async def run(url: str, nats_url: str) -> dict[str, object]:
    tables = PlatformTables(MetaData())
    db = Database(url)
    nc = await nats.connect(nats_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(tables.outbox.metadata.create_all)
        old = utcnow() - dt.timedelta(days=2)
        async with db.transaction() as session:
            await session.execute(
                insert(tables.outbox).values(
                    event_id=str(uuid.uuid4()),
                    subject="test.v1.old",
                    data=b"",
                    headers="{}",
                    created_at=old,
                    published_at=old,
                )
            )
        settings = types.SimpleNamespace(
            housekeeping_interval_seconds=0.1,
            housekeeping_batch=100,
            idempotency_retention_days=7,
            outbox_retention_hours=24,
        )
        task = asyncio.create_task(Housekeeping(db, tables, settings).run())  # type: ignore[arg-type]
        left = 1
        for _ in range(30):  # three seconds: thirty rounds of housekeeping
            await asyncio.sleep(0.1)
            async with db.sessions() as session:
                left = await session.scalar(select(func.count()).select_from(tables.outbox))
            if left == 0:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        return {"left": left, "loop_time": asyncio.get_running_loop().time()}
    finally:
        await nc.close()
        await db.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2]))))
