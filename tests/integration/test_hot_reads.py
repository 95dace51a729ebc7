"""govkit.hotreads: declared reads give the same rows as SQLAlchemy Core gives for the same
statement, on both backends (on PostgreSQL they run on raw asyncpg), and a database that cannot be
reached is UNAVAILABLE, as it is for the main pool."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    insert,
    literal_column,
    select,
    union_all,
)

from govkit.db import Database, UtcDateTime, database_unavailable
from govkit.devstack import free_port
from govkit.hotreads import DatabaseUnavailable, HotRead
from tests.support.databases import Databases

metadata = MetaData()
things = Table(
    "hot_things",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("big", BigInteger),
    Column("ratio", Float),
    Column("price", Numeric(10, 2, asdecimal=False)),
    Column("exact", Numeric(10, 2, asdecimal=True)),
    Column("flag", Boolean),
    Column("doc", JSON),
    Column("at", UtcDateTime),
    Column("kind", String(20)),
)
# Every column, and a join of the table to itself with labels (identity's caller read is one).
ALL = HotRead(select(things).where(things.c.kind == bindparam("kind")).order_by(things.c.id))
other = things.alias("other")
PAIRS = HotRead(
    select(things.c.id, other.c.id.label("other_id"), other.c.at.label("other_at"))
    .select_from(things)
    .outerjoin(other, (other.c.kind == things.c.kind) & (other.c.id != things.c.id))
    .where(things.c.id == bindparam("id"))
    .order_by(other.c.id)
)
# Values the statement sets itself (a LIMIT, constants written in), and a UNION ALL of two shapes.
OWN_VALUES = HotRead(
    select(things.c.id, things.c.count)
    .where(things.c.kind.not_in([literal_column("'other'")]), things.c.count >= bindparam("least"))
    .order_by(things.c.id.desc())
    .limit(1)
)
BOTH = HotRead(
    union_all(
        select(literal_column("0").label("kind"), things.c.id).where(things.c.id == bindparam("id")),
        select(literal_column("1").label("kind"), things.c.kind).where(things.c.count < 0),
    )
)
ROWS = [
    {
        "id": "a",
        "count": 1,
        "big": 2**40,
        "ratio": 0.5,
        "price": 12.25,
        "exact": decimal.Decimal("3.10"),
        "flag": True,
        "doc": {"编号": [1, 2], "nested": {"x": None}},
        "at": dt.datetime(2026, 11, 30, 8, 0, 1, 123456, tzinfo=dt.UTC),
        "kind": "k",
    },
    {
        "id": "b",
        "count": 0,
        "big": None,
        "ratio": None,
        "price": None,
        "exact": None,
        "flag": None,
        "doc": None,
        "at": None,
        "kind": "k",
    },
    {
        "id": "c",
        "count": -5,
        "big": -1,
        "ratio": -2.0,
        "price": 0,
        "exact": decimal.Decimal("0.00"),
        "flag": False,
        "doc": [],
        "at": dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        "kind": "other",
    },
]


@pytest_asyncio.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(databases.url("hotreads"), pool_size=4)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(things), ROWS)
    yield database
    await database.close()


def _typed(row: object) -> list[tuple[type, object]]:
    return [(type(value), value) for value in row]  # type: ignore[attr-defined]  # a row iterates


async def _core(db: Database, read: HotRead, **params: object) -> list[object]:
    async with db.read_engine.connect() as conn:
        return list((await conn.execute(read.statement, params)).all())


@pytest.mark.parametrize(
    ("read", "params"),
    [
        (ALL, {"kind": "k"}),
        (ALL, {"kind": "none"}),
        (PAIRS, {"id": "a"}),
        (OWN_VALUES, {"least": 0}),
        (BOTH, {"id": "b"}),
    ],
)
async def test_hot_rows_are_the_rows_core_reads(
    db: Database, read: HotRead, params: dict[str, object]
) -> None:
    expected = await _core(db, read, **params)
    for _ in range(2):  # the first run plans the result processing, the second uses the plan
        async with db.hot_reads() as reads:
            rows = await reads.all(read, **params)
            first = await reads.first(read, **params)
            # On PostgreSQL the rows really come from asyncpg, not from the Core path compared with.
            assert (type(reads).__name__ == "_AsyncpgReader") == db.url.startswith("postgresql")
        assert [_typed(r) for r in rows] == [_typed(r) for r in expected]
        assert [r._fields for r in rows] == [tuple(r._fields) for r in expected]  # type: ignore[attr-defined]
        assert first == (expected[0] if expected else None)


async def test_times_come_back_aware_in_utc(db: Database) -> None:
    async with db.hot_reads() as reads:
        rows = {row.id: row for row in await reads.all(ALL, kind="other")}
    assert rows["c"].at == dt.datetime(1999, 12, 31, 16, 0, tzinfo=dt.UTC)
    assert rows["c"].at.tzinfo == dt.UTC
    assert rows["c"].doc == []


def test_an_expanding_parameter_is_refused_when_planned() -> None:
    from sqlalchemy.dialects import postgresql

    read = HotRead(select(things).where(things.c.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        read.plan(postgresql.asyncpg.dialect())  # type: ignore[attr-defined]  # the asyncpg dialect class


async def test_an_unreachable_database_is_unavailable(databases: Databases) -> None:
    if databases.backend == "sqlite":
        pytest.skip("a SQLite file is always reachable")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    database = Database(url, pool_size=2)
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            async with database.hot_reads() as reads:
                await reads.all(ALL, kind="k")
        assert database_unavailable(raised.value)
    finally:
        await database.close()


async def test_a_restarted_server_fails_the_reads_in_flight_once_then_reads_go_on(
    db: Database, databases: Databases
) -> None:
    """As with the main pool: a connection found dead is UNAVAILABLE (the client may retry), and
    every idle connection opened before it is replaced, so one restart fails at most one read, not
    one per pooled connection (asyncpg usually sees the closed sockets first and fails none)."""
    if databases.backend == "sqlite":
        pytest.skip("a SQLite file has no server to restart")
    import asyncio

    import asyncpg

    async def read() -> None:
        async with db.hot_reads() as reads:
            await reads.all(ALL, kind="k")
            await asyncio.sleep(0.05)  # hold it, so the pool opens more than one

    await asyncio.gather(read(), read(), read())
    dsn = db.url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert killed >= 2
    failures = 0
    for _ in range(4):
        try:
            await read()
        except DatabaseUnavailable as exc:
            assert database_unavailable(exc)
            failures += 1
    assert failures <= 1
    await read()


BACKEND_PID = HotRead(select(literal_column("pg_backend_pid()").label("pid")).where(bindparam("one") == 1))
SLEEP = HotRead(select(literal_column("pg_sleep(5)").label("slept")).where(bindparam("one") == 1))


async def test_an_error_between_reads_keeps_the_connection_and_a_cancelled_read_drops_it(
    db: Database, databases: Databases
) -> None:
    """A caller's own error (a NotFound after its read) leaves the connection as good as any read
    does, so it serves the next read; a read cancelled mid-statement leaves it in a state nobody
    knows, so it is closed and the next read gets a new one."""
    if databases.backend == "sqlite":
        pytest.skip("a SQLite read has no connection of its own")
    import asyncio

    async def pid() -> int:
        async with db.hot_reads() as reads:
            return int((await reads.all(BACKEND_PID, one=1))[0].pid)

    first = await pid()
    with pytest.raises(LookupError):
        async with db.hot_reads() as reads:
            await reads.all(BACKEND_PID, one=1)
            raise LookupError("not found")
    assert await pid() == first

    async def slow() -> None:
        async with db.hot_reads() as reads:
            await reads.all(SLEEP, one=1)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pid() != first
