"""Async SQLAlchemy engine and sessions: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

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


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 20, immediate: bool = True) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; synchronous=FULL keeps commits durable on crash.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            # Writers take the write lock up front so concurrent writers queue instead of failing to
            # upgrade a read lock; readers begin deferred and never block anyone (WAL).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_no_autobegin(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # let the "begin" hook above issue BEGIN itself

        return engine
    # Overflow connections are closed when returned: keep the steady pool big enough for the
    # concurrency a replica serves, or every burst opens (and PostgreSQL forks) new connections.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size // 2, pool_pre_ping=True)


class Database:
    """A service's database: `transaction()` is the unit of work that writes, `sessions()` reads.

    On SQLite the two use separate engines, so a read never holds the write lock (a read
    nested in a write, or beside one, cannot deadlock); on PostgreSQL they share one pool.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.read_engine = make_engine(url, immediate=False) if is_sqlite(url) else self.engine
        # Called after a commit that staged outbox events, so the relay publishes at once.
        self.after_event_commit: Callable[[], None] | None = None
        session_cls = type("GovSession", (Session,), {})
        event.listen(session_cls, "after_commit", self._after_commit)
        self.write_sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=session_cls
        )
        self.sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._writer = asyncio.Lock() if is_sqlite(url) else None

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("outbox_dirty", False) and self.after_event_commit is not None:
            self.after_event_commit()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._writer is None:
            async with self.write_sessions() as session, session.begin():
                yield session
            return
        # SQLite has one writer at a time. Queue this process's writers here, in order, instead of
        # letting them spin in SQLite's busy handler (unfair, and seconds at p99 under load).
        # Other processes on the same file still wait in BEGIN IMMEDIATE.
        async with self._writer, self.write_sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
