"""Transactional outbox: events commit with the state change, a relay publishes them.

`add_event()` writes the event into the caller's transaction. After commit the relay publishes
pending rows to JetStream in commit order with `Nats-Msg-Id` = event id, then marks them.

No transaction is open while the relay waits for NATS: it reads the pending rows, publishes them,
then marks the published ones in a short transaction of its own. (Publishing inside the
transaction held SQLite's only write lock for the publish timeout of every request while NATS was
down.) A crash between publish and mark republishes the rows on restart and JetStream's duplicate
window drops the copies, so every event reaches the stream exactly once.

One relay per database publishes at a time, which keeps commit order across replicas: it holds a
lock for the whole round that the operating system or PostgreSQL drops if the holder dies — a
session-level advisory lock on a connection of its own (PostgreSQL), or an flock on a file beside
the database (SQLite, whose replicas share one host).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

from google.protobuf.message import Message
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Row, Table, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from govkit import metrics
from govkit.crashpoint import crashpoint
from govkit.db import Database, is_sqlite, utcnow
from govkit.events import MSG_ID_HEADER, TYPE_HEADER, NewEvent, build_event, extract_trace, inject_trace
from govkit.telemetry import tracer

log = logging.getLogger(__name__)


async def add_event(session: AsyncSession, outbox: Table, event: NewEvent) -> None:
    """Stage an event in the current transaction; it is published only if the transaction commits."""
    await session.execute(insert(outbox).values(outbox_row(event)))
    mark_staged(session, event.type)


def outbox_row(event: NewEvent) -> dict[str, Any]:
    """The outbox row of `event`, for a caller that inserts it with a statement of its own (Core,
    on the session's connection, in the session's transaction), then calls `mark_staged`: the same
    guarantees as `add_event`."""
    # The trace context of the request that caused the event travels with the row, so the
    # relay's producer span joins the request's trace.
    return {
        "event_id": event.id,
        "subject": event.type,
        "data": event.envelope,
        "headers": json.dumps(inject_trace({})),
        "created_at": utcnow(),
    }


def mark_staged(session: AsyncSession, event_type: str) -> None:
    """After an outbox row was inserted in `session`'s transaction: wake the relay once it commits."""
    session.info["outbox_dirty"] = True
    # Counted once the transaction commits (govkit.metrics business counters).
    session.info.setdefault("outbox_types", []).append(event_type)


def committed(db: Database, event_types: Sequence[str]) -> None:
    """After outbox rows committed outside `Database.transaction()` (a single statement on a
    PostgreSQL autocommit connection is its own transaction): what the session's after-commit hook
    does, count the events and wake the relay."""
    metrics.count_committed_events(event_types)
    if db.after_event_commit is not None:
        db.after_event_commit()


async def emit(
    session: AsyncSession, outbox: Table, actor: str, event_type: str, payload: Message, resource: str
) -> None:
    """Build an event about `resource`, done by `actor`, and stage it like `add_event`."""
    await add_event(session, outbox, build_event(event_type, payload, actor=actor, resource=resource))


class PublisherLock(Protocol):
    """Held by the one relay of a database that publishes; released by its death too."""

    async def acquire(self) -> bool:
        """Take the lock if it is free; never waits for it."""
        ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection kept out of the pool.

    Session-level, not transaction-level: it is held while the relay publishes with no transaction
    open. Any doubt about the connection (an error, a cancellation mid-release) discards it, so the
    lock can never stay behind on a connection that is reused.
    """

    def __init__(self, engine: AsyncEngine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        try:
            if self._conn is None:
                conn = await self.engine.connect()
                self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return bool(await self._conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))
        except BaseException:
            await self._discard()
            raise

    async def release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except BaseException:
            await self._discard()
            raise

    async def close(self) -> None:
        await self._discard()

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing the session is what frees a lock it may hold.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()


class FileLock:
    """An exclusive flock on a file beside the SQLite database: every process on the host that
    relays for that database contends for the same file, and the kernel frees it when one dies."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # also releases the lock


class ProcessLock:
    """For an in-memory database, which only this process can see."""

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


def publisher_lock(db: Database) -> PublisherLock:
    if not is_sqlite(db.url):
        return AdvisoryLock(db.engine, zlib.crc32(f"outbox:{db.url}".encode()) & 0x7FFFFFFF)
    database = make_url(db.url).database
    if not database or database == ":memory:":
        return ProcessLock()
    return FileLock(os.path.abspath(database) + ".relay-lock")


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        outbox: Table,
        js: JetStreamContext | None = None,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 5.0,
        name: str = "outbox",
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.max_backoff = max_backoff
        self.lock = publisher_lock(db)
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        # One round at a time in this process: the loop's and the final flush at shutdown.
        self._round = asyncio.Lock()
        self.pending = 0
        # created_at of the oldest unpublished row: its age is worked out when scraped, so it
        # keeps rising between the relay's rounds while NATS is away.
        self.oldest_pending: dt.datetime | None = None
        self.name = name
        db.after_event_commit = self.wake
        metrics.outbox_pending.labels(name).set_function(lambda: self.pending)
        metrics.outbox_oldest_age.labels(name).set_function(lambda: self.oldest_pending_age)

    @property
    def oldest_pending_age(self) -> float:
        """Seconds since the oldest unpublished event was committed (0 when none)."""
        oldest = self.oldest_pending
        return max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0

    def attach(self, js: JetStreamContext) -> None:
        """Start publishing through `js` (the service connects to NATS after it starts serving)."""
        self.js = js
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            # Cleared before reading, not after: a commit that lands while this round publishes
            # sets it again, so its event goes out next round instead of after a poll interval.
            self._wake.clear()
            try:
                published = await self.publish_pending()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # Not woken by commits meanwhile: during a NATS outage every request commits one.
                pause = min(self.poll_interval * 2 ** (failures - 1), self.max_backoff)
                log.warning(
                    "outbox relay cannot publish; events wait in the outbox",
                    exc_info=failures == 1,
                    extra={"error": repr(exc), "retry_in": pause, "pending": self.pending},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), pause)
                continue
            if published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def stop(self) -> None:
        """Flush what is committed, then let `run()` return."""
        self._stopped.set()
        try:
            if self.js is not None:
                while await self.publish_pending() >= self.batch_size:
                    pass
        except Exception:
            log.exception("outbox flush at shutdown failed; pending events stay for the next start")
        finally:
            await self.lock.close()

    async def publish_pending(self) -> int:
        """One round: publish up to a batch of pending rows in order; returns how many went out."""
        async with self._round:
            try:
                if self.js is None or not await self.lock.acquire():
                    return 0
                try:
                    rows = await self._pending_rows()
                    return await self._publish_rows(rows)
                finally:
                    await self.lock.release()
            finally:
                with contextlib.suppress(Exception):
                    await self._measure()

    async def _pending_rows(self) -> list[Row[*tuple[Any, ...]]]:
        # A plain read: on SQLite through the read engine, which never takes the write lock.
        async with self.db.sessions() as session:
            return list(
                (
                    await session.execute(
                        select(
                            self.outbox.c.seq,
                            self.outbox.c.event_id,
                            self.outbox.c.subject,
                            self.outbox.c.data,
                            self.outbox.c.headers,
                        )
                        .where(self.outbox.c.published_at.is_(None))
                        .order_by(self.outbox.c.seq)
                        .limit(self.batch_size)
                    )
                ).all()
            )

    async def _publish_rows(self, rows: list[Row[*tuple[Any, ...]]]) -> int:
        done: list[int] = []
        try:
            for row in rows:
                await self._publish(row.event_id, row.subject, row.data, json.loads(row.headers))
                done.append(row.seq)
                crashpoint("outbox.after_publish")
        finally:
            # What went out is marked even when a later publish failed, so it is not sent again.
            if done:
                await self._mark_published(done)
        return len(done)

    async def _mark_published(self, seqs: list[int]) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(self.outbox).where(self.outbox.c.seq.in_(seqs)).values(published_at=utcnow())
            )
        metrics.outbox_published.labels(self.name).inc(len(seqs))

    async def _publish(self, event_id: str, subject: str, data: bytes, stored: dict[str, str]) -> None:
        assert self.js is not None
        parent = extract_trace(stored)
        with tracer.start_as_current_span(
            f"{subject} publish", context=parent, kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            span.set_attribute("messaging.message.id", event_id)
            headers = inject_trace({}, trace.set_span_in_context(span))
            headers[MSG_ID_HEADER] = event_id
            headers[TYPE_HEADER] = subject
            ack = await self.js.publish(subject, data, headers=headers, timeout=self.publish_timeout)
            if ack.duplicate:
                log.info("event already in stream; duplicate dropped", extra={"event_id": event_id})

    async def _measure(self) -> None:
        async with self.db.sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(self.outbox.c.created_at)).where(
                        self.outbox.c.published_at.is_(None)
                    )
                )
            ).one()
        self.pending = int(count)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        self.oldest_pending = oldest
