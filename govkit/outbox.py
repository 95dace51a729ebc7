"""Transactional outbox: events commit with the state change, a relay publishes them.

`Outbox.add()` writes the event into the caller's transaction. After commit the relay
publishes pending rows to JetStream in commit order with `Nats-Msg-Id` = event id, then
marks them. A crash between publish and mark republishes the row on restart and
JetStream's duplicate window drops the copy, so every event reaches the stream exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import zlib

from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.metrics import Observation
from opentelemetry.trace import SpanKind
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from govkit.crashpoint import crashpoint
from govkit.db import Database, is_sqlite, utcnow
from govkit.events import MSG_ID_HEADER, TYPE_HEADER, NewEvent, extract_trace, inject_trace
from govkit.telemetry import meter, tracer

log = logging.getLogger(__name__)

_published = meter.create_counter("gov.outbox.published", description="events published from the outbox")


async def add_event(session: AsyncSession, outbox: Table, event: NewEvent) -> None:
    """Stage an event in the current transaction; it is published only if the transaction commits."""
    # The trace context of the request that caused the event travels with the row, so the
    # relay's producer span joins the request's trace.
    headers = inject_trace({})
    await session.execute(
        insert(outbox).values(
            event_id=event.id,
            subject=event.type,
            data=event.envelope,
            headers=json.dumps(headers),
            created_at=utcnow(),
        )
    )
    session.info["outbox_dirty"] = True


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        outbox: Table,
        js: JetStreamContext,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        retention: dt.timedelta = dt.timedelta(hours=24),
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_prune: float | None = None  # loop time; None: never (the clock starts near 0 at boot)
        self.pending = 0
        self.oldest_pending_age = 0.0
        # One relay per database publishes at a time (keeps commit order across replicas).
        self._lock_key = zlib.crc32(f"outbox:{db.url}".encode()) & 0x7FFFFFFF
        db.after_event_commit = self.wake
        meter.create_observable_gauge(
            "gov.outbox.pending",
            callbacks=[lambda _opts: [Observation(self.pending)]],
            description="events committed but not yet published",
        )
        meter.create_observable_gauge(
            "gov.outbox.lag",
            unit="s",
            callbacks=[lambda _opts: [Observation(self.oldest_pending_age)]],
            description="age of the oldest unpublished event",
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            # Cleared before reading, not after: a commit that lands while this round publishes
            # sets it again, so its event goes out next round instead of after a poll interval.
            self._wake.clear()
            try:
                published = await self.publish_pending()
                if self._last_prune is None or loop.time() - self._last_prune > 600:
                    await self.prune()
                    self._last_prune = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay round failed; retrying")
                published = 0
            if published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def stop(self) -> None:
        """Flush what is committed, then let `run()` return."""
        self._stopping = True
        self._wake.set()
        try:
            while await self.publish_pending() >= self.batch_size:
                pass
        except Exception:
            log.exception("outbox flush at shutdown failed; pending events stay for the next start")

    async def publish_pending(self) -> int:
        async with self.db.transaction() as session:
            if not is_sqlite(self.db.url):
                got = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key}
                )
                if not got:
                    return 0
            rows = (
                await session.execute(
                    select(
                        self.outbox.c.seq,
                        self.outbox.c.event_id,
                        self.outbox.c.subject,
                        self.outbox.c.data,
                        self.outbox.c.headers,
                        self.outbox.c.created_at,
                    )
                    .where(self.outbox.c.published_at.is_(None))
                    .order_by(self.outbox.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
            for row in rows:
                await self._publish(row.event_id, row.subject, row.data, json.loads(row.headers))
                crashpoint("outbox.after_publish")
            if rows:
                await session.execute(
                    update(self.outbox)
                    .where(self.outbox.c.seq.in_([r.seq for r in rows]))
                    .values(published_at=utcnow())
                )
                _published.add(len(rows))
            await self._measure(session)
        return len(rows)

    async def _publish(self, event_id: str, subject: str, data: bytes, stored: dict[str, str]) -> None:
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
            ack = await self.js.publish(subject, data, headers=headers)
            if ack.duplicate:
                log.info("event already in stream; duplicate dropped", extra={"event_id": event_id})

    async def _measure(self, session: AsyncSession) -> None:
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
        self.oldest_pending_age = (utcnow() - oldest).total_seconds() if oldest else 0.0

    async def prune(self) -> None:
        cutoff = utcnow() - self.retention
        async with self.db.transaction() as session:
            await session.execute(
                delete(self.outbox).where(
                    self.outbox.c.published_at.is_not(None), self.outbox.c.published_at < cutoff
                )
            )
