"""The hottest reads (a caller on every `/me`, a ticket on every view) without SQLAlchemy's execution
layer on PostgreSQL.

    _TICKET = HotRead(select(tickets).where(tickets.c.id == bindparam("id")))
    async with db.hot_reads() as reads:
        row = await reads.first(_TICKET, id=ticket_id)

A `HotRead` is a Core statement with bound parameters only, compiled once per dialect. On
PostgreSQL it runs on a raw asyncpg connection from a small pool of its own: no SQLAlchemy pool
checkout, greenlet hop, execution context or cursor adapter. A single-row read took 0.42-0.48 ms of
CPU through SQLAlchemy Core and takes 0.15 ms here (bench/request_costs.py; bench/README.md, "Fourth
pass"). The rows are named
tuples with the statement's column names, after the same result processing SQLAlchemy applies (a
TypeDecorator's `process_result_value`, JSON decoding), so they read exactly like Core rows. On
SQLite the statement runs on the read engine as before and the rows are SQLAlchemy's own.

Reads here are single autocommit statements, as `Database.sessions()` runs them on PostgreSQL: each
sees the latest committed data (live authorization checks stay live). They change no session state,
so a returned connection needs no reset query.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from govkit.pgpool import ConnectionPool

if TYPE_CHECKING:
    import asyncpg

Processor = Callable[[Any], Any] | None

# SQLSTATE classes of a database that cannot serve right now, whatever the statement: connection
# exceptions (08), insufficient resources such as "too many clients" (53), operator intervention
# such as a shutdown (57P). govkit.db reads SQLAlchemy's errors by them too.
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
ACQUIRE_TIMEOUT_SECONDS = 30.0  # SQLAlchemy's pool timeout, so both pools give up alike


class DatabaseUnavailable(RuntimeError):
    """A hot read could not reach the database (govkit.db.database_unavailable: UNAVAILABLE)."""


@dataclass
class _Plan:
    sql: str
    params: tuple[str, ...]  # bind names in positional order
    binders: tuple[Processor, ...]
    types: tuple[Any, ...]  # the result columns' SQLAlchemy types
    row: Any  # a namedtuple class of the result columns' names
    fixed: dict[str, Any]  # values of parameters the statement itself sets
    # Set at the first run, from the column types the server reports (some processors need them).
    processors: tuple[Processor, ...] | None = None
    plain: bool = False  # no column needs processing: a record goes into its row as it is


@dataclass
class HotRead:
    """One declared read: a Core SELECT (or UNION) whose values are bound at each call (`bindparam`)
    or set by the statement itself (its LIMIT); no expanding IN, whose SQL changes with its values."""

    statement: Select[Any] | CompoundSelect[Any]
    _plans: dict[str, _Plan] = field(default_factory=dict, init=False, repr=False, compare=False)

    def plan(self, dialect: Dialect) -> _Plan:
        found = self._plans.get(dialect.name)
        if found is None:
            found = self._plans[dialect.name] = _compile(self.statement, dialect)
        return found


def _compile(statement: Select[Any] | CompoundSelect[Any], dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("a hot read takes plain bound parameters only (no expanding IN)")
    names = tuple(compiled.positiontup or ())
    # Values the statement carries itself (a LIMIT, a constant compared with): bound at every run.
    fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    bind_processors = compiled._bind_processors
    binders = tuple(cast(Processor, bind_processors.get(name)) for name in names)
    columns = compiled._result_columns
    row = namedtuple("HotRow", [column[0] for column in columns])  # type: ignore[misc]  # from the statement
    return _Plan(compiled.string, names, binders, tuple(column[3] for column in columns), row, fixed)


def split_joined(rows: Sequence[Any], width: int, parent: Any, child: Any) -> tuple[Any | None, list[Any]]:
    """A parent LEFT JOINed to its children, one row per child, split back: the parent from the
    first `width` columns (None when there are no rows, or the parent's first column is null: an
    outer join from an anchor), the children from the rest of each row whose first child column is
    not null. `parent` and `child` are named-tuple classes of those columns."""
    first = rows[0] if rows else None
    found = parent._make(first[:width]) if first is not None and first[0] is not None else None
    return found, [child._make(row[width:]) for row in rows if row[width] is not None]


class Reader(Protocol):
    async def all(self, read: HotRead, /, **params: Any) -> Sequence[Any]: ...

    async def first(self, read: HotRead, /, **params: Any) -> Any | None: ...


class _AsyncpgReader:
    def __init__(self, conn: asyncpg.Connection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    async def all(self, read: HotRead, /, **params: Any) -> list[Any]:
        plan = read.plan(self.dialect)
        values = {**plan.fixed, **params} if plan.fixed else params
        args = [
            values[name] if bind is None else bind(values[name])
            for name, bind in zip(plan.params, plan.binders, strict=True)
        ]
        processors = plan.processors
        if processors is None:
            processors = await self._processors(plan)
        records = await self.conn.fetch(plan.sql, *args)
        make = plan.row._make
        if plan.plain:
            return [make(record) for record in records]
        return [
            make([v if p is None else p(v) for v, p in zip(record, processors, strict=True)])
            for record in records
        ]

    async def first(self, read: HotRead, /, **params: Any) -> Any | None:
        rows = await self.all(read, **params)
        return rows[0] if rows else None

    async def _processors(self, plan: _Plan) -> tuple[Processor, ...]:
        """SQLAlchemy's result processors for the columns, given the types the server reports (as its
        cursor description would: a numeric column's processor depends on it)."""
        attributes = (await self.conn.prepare(plan.sql)).get_attributes()
        processors = tuple(
            kind._cached_result_processor(self.dialect, attribute.type.oid)
            for kind, attribute in zip(plan.types, attributes, strict=True)
        )
        plan.processors, plan.plain = processors, not any(processors)
        return processors


class CoreReader:
    """The same statements through SQLAlchemy, on a connection the caller holds (SQLite's hot reads,
    or reads inside a write transaction on any backend)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def all(self, read: HotRead, /, **params: Any) -> Sequence[Any]:
        rows: Sequence[Any] = (await self.conn.execute(read.statement, params)).all()
        return rows

    async def first(self, read: HotRead, /, **params: Any) -> Any | None:
        return (await self.conn.execute(read.statement, params)).first()


async def _decode_json(conn: asyncpg.Connection) -> None:
    # What SQLAlchemy's asyncpg dialect sets up on its connections, so JSON columns read the same.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def hot_pool_size(pool_size: int) -> int:
    """The hot reads' own connections beside a main pool of `pool_size` (a third of it, at least 2):
    a hot read holds its connection for one or two round trips, so a few serve a replica's load."""
    return max(2, pool_size // 3)


class HotReadPool:
    """The raw connections for hot reads on PostgreSQL (govkit.pgpool), opened on first use.

    It is small on purpose (a hot read holds its connection for one or two round trips) and counts
    against the server's max_connections beside the main pool (govkit.config.db_pool_size)."""

    def __init__(self, engine: AsyncEngine, size: int, connect_args: Mapping[str, Any]) -> None:
        self.engine = engine
        self.size = size
        dialect = engine.dialect
        _, kwargs = dialect.create_connect_args(engine.url)
        # The URL's options as SQLAlchemy hands them to asyncpg, less its own (the statement cache
        # settings of its adapter, for one).
        accepted = _connect_parameters()
        self._connect_kwargs = {**{k: v for k, v in kwargs.items() if k in accepted}, **connect_args}
        self.pool = ConnectionPool(self._connect, size, acquire_timeout=ACQUIRE_TIMEOUT_SECONDS)

    async def _connect(self) -> asyncpg.Connection:
        import asyncpg

        conn = await asyncpg.connect(**self._connect_kwargs)
        try:
            await _decode_json(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Reader]:
        import asyncpg

        # A connection that fails like these is gone (server restart, failover, a terminated
        # backend); asyncpg reports one the server closed between uses as an internal client error.
        broken = (
            OSError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        )
        try:
            conn = await self.pool.acquire()
        except (TimeoutError, *broken) as exc:
            raise DatabaseUnavailable(f"cannot reach the database: {exc.__class__.__name__}") from exc
        except asyncpg.PostgresError as exc:
            if _unavailable(exc):
                raise DatabaseUnavailable(f"the database refused a connection: {exc.sqlstate}") from exc
            raise
        try:
            yield _AsyncpgReader(conn, self.engine.dialect)
        except asyncpg.PostgresError as exc:
            if not _unavailable(exc):
                # The statement failed on a working connection (autocommit: nothing to undo).
                self.pool.release(conn)
                raise
            self._went_away(conn)
            raise DatabaseUnavailable(f"the database went away: {exc.sqlstate}") from exc
        except broken as exc:
            self._went_away(conn)
            raise DatabaseUnavailable(f"the database went away: {exc.__class__.__name__}") from exc
        except (asyncio.CancelledError, TimeoutError):
            # Cancelled, perhaps in the middle of a statement: the connection's state is not known.
            self.pool.release(conn, discard=True)
            raise
        except BaseException:
            # Raised by the caller between statements (a NotFound, a PermissionDenied): the
            # connection is as good as after any read.
            self.pool.release(conn)
            raise
        else:
            self.pool.release(conn)

    def _went_away(self, conn: asyncpg.Connection) -> None:
        # Every idle connection opened before is likely as dead, so a restart fails the reads in
        # flight, not one read per pooled connection.
        self.pool.expire()
        with contextlib.suppress(Exception):
            conn.terminate()
        self.pool.release(conn, discard=True)

    async def close(self) -> None:
        await self.pool.close()


@functools.cache
def _connect_parameters() -> frozenset[str]:
    import asyncpg

    return frozenset(inspect.signature(asyncpg.connect).parameters)


def _unavailable(exc: Any) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES)


@asynccontextmanager
async def core_reader(engine: AsyncEngine) -> AsyncIterator[Reader]:
    async with engine.connect() as conn:
        yield CoreReader(conn)
