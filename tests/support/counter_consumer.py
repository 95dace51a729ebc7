"""A minimal event consumer process built on the platform's consumer runner, for crash tests.

It counts how many times each event's side effect was applied. Events whose resource is
`poison` always fail, to exercise bounded redelivery and the dead-letter subject.

    python -m tests.support.counter_consumer DB_URL NATS_URL DURABLE [batched]
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gov.common.v1 import event_pb2
from govkit import bus
from govkit.consumer import ConsumerSpec, EventConsumer
from govkit.db import Database
from govkit.tables import PlatformTables

metadata = MetaData()
tables = PlatformTables(metadata)
applied = Table(
    "applied", metadata, Column("event_id", String(36), primary_key=True), Column("times", Integer)
)


async def count(session: AsyncSession, event: event_pb2.Event) -> None:
    if event.resource == "poison":
        raise ValueError("this event can never be handled")
    times = await session.scalar(select(applied.c.times).where(applied.c.event_id == event.id))
    if times is None:
        await session.execute(applied.insert().values(event_id=event.id, times=1))
    else:
        await session.execute(update(applied).where(applied.c.event_id == event.id).values(times=times + 1))


async def main(db_url: str, nats_url: str, durable: str, mode: str = "") -> None:
    db = Database(db_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    nc = await bus.connect(nats_url, "counter-consumer")
    spec = ConsumerSpec(
        durable=durable,
        stream="IDENTITY",
        subjects=["identity.v1.>"],
        handler=count,
        max_deliver=3,
        ack_wait=1.0,
        backoff=(0.2,),
        batched=mode == "batched",
    )
    consumer = EventConsumer(spec, nc.jetstream(), db, tables)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, consumer.stop)
    print("ready", flush=True)
    await consumer.run()
    await nc.drain()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
