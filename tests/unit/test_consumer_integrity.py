"""A handler whose own write clashes fails the delivery (so it is retried); only a clash on the
processed-event id itself means another replica handled the event first."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.common.v1 import event_pb2
from govkit.consumer import ConsumerSpec, EventConsumer
from govkit.db import Database
from govkit.tables import PlatformTables


async def _setup(tmp_path: Path) -> tuple[Database, PlatformTables, Table]:
    metadata = MetaData()
    tables = PlatformTables(metadata)
    things = Table("things", metadata, Column("id", Integer, primary_key=True))
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/consumer.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db, tables, things


async def test_a_clash_in_the_handler_is_a_failure_not_a_duplicate(tmp_path: Path) -> None:
    db, tables, things = await _setup(tmp_path)
    async with db.transaction() as session:
        await session.execute(insert(things).values(id=1))

    async def clashing(session: AsyncSession, event: event_pb2.Event) -> None:
        await session.execute(insert(things).values(id=1))

    spec = ConsumerSpec(durable="clash", stream="TEST", subjects=["test.v1.>"], handler=clashing)
    consumer = EventConsumer(spec, js=None, db=db, tables=tables)  # type: ignore[arg-type]
    try:
        with pytest.raises(IntegrityError):
            await consumer._apply_once(event_pb2.Event(id="e-1"))
        async with db.sessions() as session:
            recorded = await session.scalar(select(tables.processed_events.c.event_id))
        assert recorded is None  # not marked processed: the redelivery runs the handler again
    finally:
        await db.close()


async def test_prepared_writes_run_in_the_transaction_and_duplicates_skip_the_preparation(
    tmp_path: Path,
) -> None:
    db, tables, things = await _setup(tmp_path)
    prepared: list[str] = []

    async def prepare(event: event_pb2.Event):  # type: ignore[no-untyped-def]
        prepared.append(event.id)  # stands for calls to other services, made outside any transaction
        assert db._writer is not None and not db._writer.locked()

        async def writes(session: AsyncSession) -> None:
            await session.execute(insert(things).values(id=len(prepared)))

        return writes

    spec = ConsumerSpec(durable="prep", stream="TEST", subjects=["test.v1.>"], prepare=prepare)
    consumer = EventConsumer(spec, js=None, db=db, tables=tables)  # type: ignore[arg-type]
    try:
        assert await consumer._apply_once(event_pb2.Event(id="e-1")) is True
        assert await consumer._apply_once(event_pb2.Event(id="e-1")) is False
        assert prepared == ["e-1"]
        async with db.sessions() as session:
            assert (await session.scalars(select(things.c.id))).all() == [1]
    finally:
        await db.close()


def test_a_consumer_takes_a_handler_or_a_preparer_not_both() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ConsumerSpec(durable="x", stream="TEST", subjects=["test.v1.>"])
