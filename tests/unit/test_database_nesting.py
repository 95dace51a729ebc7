"""A task holding a write transaction must not ask the pool for a second connection: enough such
tasks at once hold every connection and wait for each other until the pool times out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from govkit.db import Database, NestedConnection


def _database(tmp_path: Path, *, forbid: bool) -> Database:
    return Database(f"sqlite+aiosqlite:///{tmp_path / 'nesting.db'}", forbid_nested=forbid)


async def test_reads_and_writes_one_after_another_are_fine(tmp_path: Path) -> None:
    db = _database(tmp_path, forbid=True)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
        async with db.sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        async with db.snapshot() as session:
            await session.execute(text("SELECT 1"))
    finally:
        await db.close()


@pytest.mark.parametrize("second", ["sessions", "snapshot", "transaction"])
async def test_a_second_connection_inside_a_write_transaction_fails_in_strict_mode(
    tmp_path: Path, second: str
) -> None:
    db = _database(tmp_path, forbid=True)
    try:
        with pytest.raises(NestedConnection, match="holds a write transaction"):
            async with db.transaction():
                opener = getattr(db, second)
                async with opener():
                    pass
        # The transaction that failed released its claim: the next read is fine.
        async with db.sessions() as session:
            await session.execute(text("SELECT 1"))
    finally:
        await db.close()


async def test_outside_strict_mode_it_is_logged_and_the_call_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = _database(tmp_path, forbid=False)
    try:
        with caplog.at_level(logging.WARNING, logger="govkit.db"):
            async with db.transaction(), db.sessions() as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        assert any("holds a write transaction" in r.getMessage() for r in caplog.records)
    finally:
        await db.close()
