"""Async SQLAlchemy engine and sessions: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

import grpc
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from govkit import metrics, tls
from govkit.errors import DomainError, NotFound
from govkit.hotreads import (
    UNAVAILABLE_SQLSTATES,
    DatabaseUnavailable,
    HotReadPool,
    Reader,
    core_reader,
    hot_pool_size,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Stable constraint names so Alembic migrations are the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


# Sequence numbers: BIGINT, but INTEGER on SQLite, where only an INTEGER PRIMARY KEY is the rowid
# (and so numbers itself). Released migrations use it: it never changes.
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@functools.lru_cache(maxsize=64)
def is_sqlite(url: str) -> bool:
    # Cached: a report and a transition ask on every call, and parsing the URL cost ~1% of a report.
    return make_url(url).get_backend_name() == "sqlite"


# PostgreSQL's SQLSTATEs for a transaction that lost a race and was rolled back: run again, it may pass.
_CONFLICT_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock"}


class TransactionConflict(DomainError):
    """A transaction lost a deadlock or serialization race and was rolled back; nothing of it stays."""

    code = grpc.StatusCode.ABORTED


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or refused the connection, or every pooled connection stayed
    busy for the pool's whole timeout: the call may be retried."""
    if isinstance(exc, PoolTimeout | DatabaseUnavailable):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(cause, "sqlstate", None) or ""
    return isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def _conflict_reason(exc: DBAPIError) -> str | None:
    return _CONFLICT_SQLSTATES.get(getattr(exc.orig, "sqlstate", None) or "")


class _UnitOfWork:
    """One run of work under `retry_conflicts`: whether any transaction in it has committed."""

    def __init__(self, parent: _UnitOfWork | None) -> None:
        self.parent = parent
        self.committed = False

    def mark_committed(self) -> None:
        unit: _UnitOfWork | None = self
        while unit is not None:
            unit.committed = True
            unit = unit.parent


_unit_of_work: contextvars.ContextVar[_UnitOfWork | None] = contextvars.ContextVar(
    "gov_unit_of_work", default=None
)

# The database whose write transaction the current task holds open, if any.
_holding: contextvars.ContextVar[Database | None] = contextvars.ContextVar("gov_db_holding", default=None)


class NestedConnection(RuntimeError):
    """A second connection asked for while the same task holds a write transaction open."""


async def retry_conflicts(
    work: Callable[[], Awaitable[T]], *, attempts: int = 4, base_delay: float = 0.02
) -> T:
    """Run `work`; when a `Database.transaction()` in it loses a deadlock or serialization race, run it
    again after a short random pause, at most `attempts` times in all.

    A rolled-back transaction cannot be replayed statement by statement: the code that built it must
    read again and decide again, so the retry unit is the whole `work` (a gRPC call, an event
    handler). It is retried only while it has committed nothing, so nothing it did is done twice;
    after a commit, or once the attempts are spent, the conflict is raised (ABORTED: try again).
    """
    attempt = 1
    while True:
        unit = _UnitOfWork(_unit_of_work.get())
        token = _unit_of_work.set(unit)
        try:
            return await work()
        except TransactionConflict:
            if unit.committed or attempt >= attempts:
                raise
        finally:
            _unit_of_work.reset(token)
        # Full jitter: two transactions that deadlocked must not collide again in step.
        delay = random.uniform(0, base_delay * 2**attempt)  # noqa: S311 - not security
        log.info("transaction conflict; running it again", extra={"attempt": attempt, "delay": delay})
        await asyncio.sleep(delay)
        attempt += 1


def make_engine(
    url: str, *, pool_size: int = 10, immediate: bool = True, ssl_ca_file: str | None = None
) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; synchronous=FULL keeps commits durable on crash.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the write lock up front so concurrent writers queue instead of failing to
            # upgrade a read lock; readers begin deferred and never block anyone (WAL).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_no_autobegin(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook above issue BEGIN itself

        return engine
    # Overflow connections are closed when returned: keep the steady pool big enough for the
    # concurrency a replica serves, or every burst opens (and PostgreSQL forks) new connections.
    # No pre-ping: it cost a round trip on every checkout (a tenth of a read's time). A connection
    # found dead (server restart, failover) fails its call with UNAVAILABLE, and SQLAlchemy then
    # discards every connection older than that moment, so one restart fails only the calls in flight.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size // 2, connect_args=postgres_connect_args(ssl_ca_file)
    )


def postgres_connect_args(ssl_ca_file: str | None) -> dict[str, Any]:
    """asyncpg's arguments for TLS verified against `ssl_ca_file` (GOV_TLS_POSTGRES_CA_FILE): the
    server's certificate and its name, like sslmode=verify-full. They win over an `ssl` parameter in
    the URL; without a CA file the URL's own (`?ssl=require`, `?ssl=verify-full` with the system's
    CAs) applies as before."""
    if not ssl_ca_file:
        return {}
    return {"ssl": tls.client_context(ssl_ca_file)}


class Database:
    """A service's database: `transaction()` is the unit of work that writes, `sessions()` reads.

    On SQLite the two use separate engines, so a read never holds the write lock (a read
    nested in a write, or beside one, cannot deadlock); on PostgreSQL they share one pool.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        ssl_ca_file: str | None = None,
        forbid_nested: bool = False,
    ) -> None:
        self.url = url
        self.forbid_nested = forbid_nested
        self.engine = make_engine(url, pool_size=pool_size, ssl_ca_file=ssl_ca_file)
        self._hot: HotReadPool | None = None
        if is_sqlite(url):
            self.read_engine = make_engine(url, immediate=False)
            snapshot_engine = self.read_engine
        else:
            # Reads run in autocommit: under READ COMMITTED every statement takes its own snapshot
            # anyway, so BEGIN and ROLLBACK were two round trips that bought nothing. Reads that
            # need one moment across statements use `snapshot()`.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            snapshot_engine = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            self._hot = HotReadPool(self.engine, hot_pool_size(pool_size), postgres_connect_args(ssl_ca_file))
        # Called after a commit that staged outbox events, so the relay publishes at once.
        self.after_event_commit: Callable[[], None] | None = None
        session_cls = type("GovSession", (Session,), {})
        event.listen(session_cls, "after_commit", self._after_commit)
        self.write_sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=session_cls
        )
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._snapshot_sessions = async_sessionmaker(snapshot_engine, expire_on_commit=False)
        self._writer = asyncio.Lock() if is_sqlite(url) else None

    def _after_commit(self, session: Session) -> None:
        metrics.count_committed_events(session.info.pop("outbox_types", ()))
        if session.info.pop("outbox_dirty", False) and self.after_event_commit is not None:
            self.after_event_commit()

    def pool_in_use(self) -> float:
        pool = self.engine.sync_engine.pool
        return float(getattr(pool, "checkedout", lambda: 0)())

    def pool_size(self) -> float:
        pool = self.engine.sync_engine.pool
        return float(getattr(pool, "size", lambda: 0)())

    def sessions(self) -> AsyncSession:
        """A read session (`async with db.sessions() as session:`); autocommit on PostgreSQL."""
        self._check_nesting("a read session")
        return self._read_sessions()

    def hot_reads(self) -> AbstractAsyncContextManager[Reader]:
        """A connection for declared hot reads (`govkit.hotreads`): raw asyncpg on PostgreSQL, the
        read engine elsewhere. Use it for single-statement reads on the busiest paths only."""
        if self._hot is not None:
            return self._hot.reader()
        return core_reader(self.read_engine)

    def _check_nesting(self, what: str) -> None:
        """On PostgreSQL reads and writes share one pool: a task that holds a write transaction and
        asks for another connection keeps its first one while it waits, so enough such tasks at once
        take every connection and wait for each other until the pool times out. Read inside the
        transaction's own session instead (or before it). Strict mode (tests) fails the call; in
        production it is logged, once per call site, since the call itself still works."""
        if _holding.get() is not self:
            return
        message = f"{what} opened while this task holds a write transaction (a second pooled connection)"
        if self.forbid_nested:
            raise NestedConnection(message)
        log.warning(message, stack_info=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction. If PostgreSQL rolls it back to break a deadlock or a serialization
        conflict, it raises `TransactionConflict`, which `retry_conflicts` (around every gRPC call
        and event handler) answers by running the caller's work again."""
        self._check_nesting("a write transaction")
        holding = _holding.set(self)
        try:
            if self._writer is None:
                async with self.write_sessions() as session, session.begin():
                    yield session
            else:
                # SQLite has one writer at a time. Queue this process's writers here, in order, instead
                # of letting them spin in SQLite's busy handler (unfair, and seconds at p99 under load).
                # Other processes on the same file still wait in BEGIN IMMEDIATE.
                async with self._writer, self.write_sessions() as session, session.begin():
                    yield session
        except DBAPIError as exc:
            reason = _conflict_reason(exc)
            if reason is None:
                raise
            raise TransactionConflict(f"the transaction was rolled back by a {reason}; try again") from exc
        finally:
            _holding.reset(holding)
        unit = _unit_of_work.get()
        if unit is not None:
            unit.mark_committed()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """Reads that must see one committed moment across several statements (a ledger check, a
        report summing two tables): a read-only REPEATABLE READ transaction on PostgreSQL, a read
        transaction on SQLite (WAL gives it a snapshot at its first read)."""
        self._check_nesting("a snapshot")
        async with self._snapshot_sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._hot is not None:
            await self._hot.close()
        await self.engine.dispose()
        if is_sqlite(self.url):
            await self.read_engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. `session.execute` is typed as returning a plain
    Result whatever the statement; for DML it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount


M = TypeVar("M")


async def get_row(session: AsyncSession, model: type[M], key: Any, missing: str, *, lock: bool = False) -> M:
    """`session.get` (FOR UPDATE with `lock`), or NOT_FOUND with the message `missing`."""
    row = await session.get(model, key, with_for_update=True if lock else None)
    if row is None:
        raise NotFound(missing)
    return row
