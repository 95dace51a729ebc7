"""Event consumer runner: durable pull consumer, explicit ack, bounded redelivery, dead letters.

A handler runs inside a database transaction together with the insert of the event id
into `processed_events`; a redelivered event whose id is already there is acked and
skipped. A handler that keeps failing is retried with backoff up to `max_deliver`
times, then copied to `deadletter.<consumer>.<subject>` and acked — only once the dead
letter is stored: if that publish fails the event stays unacked and comes back later.
The bound is counted here, not by JetStream (whose own `max_deliver` would stop
redelivering an event whose dead letter could not be stored, losing it).

A consumer that opts in (`ConsumerSpec.batched`) applies each fetched batch together: one read
skips the duplicates, the preparations run concurrently, and every new event's processed row and
writes go into ONE transaction; after its commit each event is acked. Should that transaction fail
(one event's handler raises, or another replica recorded one of the ids first), nothing of it
stays and the batch's events are applied one by one as above, each settled on its own, so a poison
event is retried and dead-lettered exactly as before and the others are applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.common.v1 import event_pb2
from govkit import metrics
from govkit.crashpoint import crashpoint
from govkit.db import Database, retry_conflicts, utcnow
from govkit.events import MSG_ID_HEADER, dead_letter_subject, extract_trace, parse_event
from govkit.tables import PlatformTables
from govkit.telemetry import tracer

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, event_pb2.Event], Awaitable[None]]
# The writes an event calls for, decided before the transaction that makes them opens.
Writes = Callable[[AsyncSession], Awaitable[None]]
Preparer = Callable[[event_pb2.Event], Awaitable[Writes]]

# How often the consumer asks JetStream for its lag (num_pending) while it runs.
LAG_POLL_SECONDS = 5.0


@dataclass
class ConsumerSpec:
    durable: str
    stream: str
    subjects: Sequence[str]
    # Applies an event inside the transaction that records it as processed.
    handler: Handler | None = None
    # Instead of `handler`, for events that need calls to other services first: runs before the
    # transaction opens (a duplicate is skipped before it) and returns the writes to make inside
    # it, so no transaction (on SQLite: the one writer) waits on the network.
    prepare: Preparer | None = None
    max_deliver: int = 5
    ack_wait: float = 30.0
    # Delay before each redelivery after a failure; the last value repeats.
    backoff: Sequence[float] = field(default_factory=lambda: (1.0, 5.0, 30.0, 120.0))
    batch: int = 20
    # Apply each fetched batch in one transaction (see the module's docstring). For handlers whose
    # events may be applied in any order within a batch's transaction, one after another in the
    # order fetched; what an event writes must not depend on a later event of the same batch.
    batched: bool = False
    # With `batched`: how many preparations (calls to other services) run at once.
    prepare_concurrency: int = 8

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.prepare is None):
            raise ValueError(f"consumer {self.durable}: give exactly one of handler and prepare")


@dataclass(eq=False)
class _Item:
    """One message of a batch on its way through `EventConsumer.handle_batch`."""

    msg: Msg
    event: event_pb2.Event
    span: Span
    writes: Writes | None = None
    # A second copy of an event earlier in the batch: acked once the batch commits, never applied.
    repeat: bool = False


class EventConsumer:
    def __init__(
        self, spec: ConsumerSpec, js: JetStreamContext, db: Database, tables: PlatformTables
    ) -> None:
        self.spec = spec
        self.js = js
        self.db = db
        self.processed = tables.processed_events
        self._stopping = False
        self.pending = 0
        self._lag_checked = 0.0

    async def run(self) -> None:
        """Consume until stopped; any failure is logged and the subscription made again."""
        while not self._stopping:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer %s failed; subscribing again in 1 s", self.spec.durable)
                await asyncio.sleep(1)

    async def _consume(self) -> None:
        spec = self.spec
        config = ConsumerConfig(
            name=spec.durable,
            durable_name=spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=spec.ack_wait,
            # Unbounded on the server: `spec.max_deliver` is enforced in `_failed`, which acks only
            # after the dead letter is stored.
            max_deliver=-1,
            filter_subjects=list(spec.subjects) if len(spec.subjects) > 1 else None,
            filter_subject=spec.subjects[0] if len(spec.subjects) == 1 else None,
        )
        # Create, or bring an existing durable consumer up to this configuration.
        await self.js.add_consumer(spec.stream, config=config)
        sub = await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
        try:
            while not self._stopping:
                try:
                    messages = await sub.fetch(batch=spec.batch, timeout=1.0)
                except TimeoutError:  # nats.errors.TimeoutError, or asyncio's from some fetch paths
                    await self._measure_lag()
                    continue
                if spec.batched:
                    await self.handle_batch(messages)
                else:
                    for msg in messages:
                        await self.handle(msg)
                await self._measure_lag()
        finally:
            # An open pull subscription makes the connection's drain() wait for its timeout.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _measure_lag(self) -> None:
        """Consumer lag for the metrics, at most every LAG_POLL_SECONDS (one request to JetStream)."""
        now = asyncio.get_running_loop().time()
        if now - self._lag_checked < LAG_POLL_SECONDS:
            return
        self._lag_checked = now
        try:
            info = await self.js.consumer_info(self.spec.stream, self.spec.durable, timeout=2)
        except Exception as exc:
            log.debug("consumer info unavailable", extra={"error": repr(exc)})
            return
        self.pending = int(info.num_pending or 0)
        metrics.consumer_lag.labels(self.spec.durable, self.spec.stream).set(self.pending)
        metrics.consumer_ack_pending.labels(self.spec.durable, self.spec.stream).set(
            info.num_ack_pending or 0
        )

    def stop(self) -> None:
        """Finish the current batch, then return from `run()`."""
        self._stopping = True

    def _span(self, msg: Msg) -> Span:
        """The span of one message's handling, not yet current."""
        if msg.metadata.num_delivered > 1:
            metrics.consumer_redeliveries.labels(self.spec.durable).inc()
        # The producer's context (W3C traceparent in the headers) is both the parent and a link:
        # each message has its own span, so the request that caused the event, its publish and
        # its handling read as one trace, and the link is what messaging tools look for.
        parent = extract_trace(msg.headers or {})
        producer = trace.get_current_span(parent).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
        span = tracer.start_span(
            f"{msg.subject} process", context=parent, kind=SpanKind.CONSUMER, links=links
        )
        span.set_attribute("messaging.system", "nats")
        span.set_attribute("messaging.consumer.group.name", self.spec.durable)
        span.set_attribute("messaging.destination.name", msg.subject)
        return span

    async def handle(self, msg: Msg) -> None:
        span = self._span(msg)
        with trace.use_span(span, end_on_exit=True):
            try:
                event = parse_event(msg.data)
                span.set_attribute("messaging.message.id", event.id)
                applied = await self._apply_once(event)
                crashpoint("consumer.after_commit")
                await msg.ack()
                metrics.consumer_events.labels(self.spec.durable, "applied" if applied else "duplicate").inc()
            except Exception as exc:
                await self._settle_failure(msg, span, exc)

    async def _settle_failure(self, msg: Msg, span: Span, exc: Exception) -> None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR))
        try:
            await self._failed(msg, exc)
        except Exception:
            # Unacked, so it comes back after ack_wait.
            log.exception("could not settle a failed event", extra={"subject": msg.subject})

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in one transaction, then ack each event (`ConsumerSpec.batched`)."""
        items: list[_Item] = []
        for msg in messages:
            span = self._span(msg)
            try:
                event = parse_event(msg.data)
                if not event.id:
                    raise ValueError("event without id")
            except Exception as exc:
                with trace.use_span(span, end_on_exit=True):
                    await self._settle_failure(msg, span, exc)
                continue
            span.set_attribute("messaging.message.id", event.id)
            items.append(_Item(msg, event, span))
        try:
            if items:
                await self._handle_items(items)
        finally:
            for item in items:
                item.span.end()

    async def _handle_items(self, items: list[_Item]) -> None:
        try:
            done = await self._recorded_ids({item.event.id for item in items})
        except Exception as exc:
            # The database cannot answer: each event fails (and is retried, in the end
            # dead-lettered) on its own, as one handled alone would.
            log.warning("duplicate check failed (%r); handling the batch one by one", exc)
            for item in items:
                await self._one_by_one(item)
            return
        fresh: list[_Item] = []
        first: set[str] = set()
        for item in items:
            if item.event.id in done:
                # Committed before: acked at once, as a duplicate always was.
                await self._ack(item, applied=False)
            elif item.event.id in first:
                item.repeat = True  # the same event twice in one batch: settled with the first
                fresh.append(item)
            else:
                first.add(item.event.id)
                fresh.append(item)
        if self.spec.prepare is not None:
            fresh = await self._prepare_all(fresh)
        if not fresh:
            return
        try:
            await retry_conflicts(lambda: self._apply_batch(fresh))
        except Exception as exc:
            # Nothing of the batch was committed: each event on its own, settled on its own.
            log.info(
                "batch of %d events not applied together (%r); applying them one by one",
                len(fresh),
                exc,
                extra={"consumer": self.spec.durable},
            )
            for item in fresh:
                await self._one_by_one(item)
            return
        crashpoint("consumer.after_commit")
        for item in fresh:
            await self._ack(item, applied=not item.repeat)

    async def _prepare_all(self, items: list[_Item]) -> list[_Item]:
        """Each new event's preparation, a few at once; an event whose preparation fails is settled
        as a failure now and left out of the batch."""
        assert self.spec.prepare is not None
        prepare = self.spec.prepare
        slots = asyncio.Semaphore(max(1, self.spec.prepare_concurrency))

        async def one(item: _Item) -> bool:
            if item.repeat:
                return True
            with trace.use_span(item.span, end_on_exit=False):
                try:
                    async with slots:
                        item.writes = await prepare(item.event)
                    return True
                except Exception as exc:
                    await self._settle_failure(item.msg, item.span, exc)
                    return False

        kept = await asyncio.gather(*(one(item) for item in items))
        failed = {item.event.id for item, ok in zip(items, kept, strict=True) if not ok}
        # A repeat of a failed event is left unacked too: it comes back and is deduplicated then.
        return [item for item in items if item.event.id not in failed]

    async def _apply_batch(self, items: list[_Item]) -> None:
        new = [item for item in items if not item.repeat]
        async with self.db.transaction() as session:
            # None of these ids was recorded at the read before the preparations. One recorded since
            # (by another replica) makes this insert clash: the batch then goes one by one, where
            # each event's own check finds it.
            now = utcnow()
            await session.execute(
                insert(self.processed),
                [{"consumer": self.spec.durable, "event_id": i.event.id, "processed_at": now} for i in new],
            )
            for item in new:
                if item.writes is not None:
                    await item.writes(session)
                elif self.spec.handler is not None:
                    await self.spec.handler(session, item.event)
            crashpoint("consumer.before_commit")

    async def _one_by_one(self, item: _Item) -> None:
        with trace.use_span(item.span, end_on_exit=False):
            try:
                if item.repeat:
                    # Its first copy was just settled: a duplicate if that one was applied.
                    applied = await self._apply_once(item.event)
                elif item.writes is not None:
                    writes = item.writes
                    applied = await retry_conflicts(lambda: self._apply_in_transaction(item.event, writes))
                else:
                    applied = await self._apply_once(item.event)
                crashpoint("consumer.after_commit")
            except Exception as exc:
                await self._settle_failure(item.msg, item.span, exc)
                return
            await self._ack(item, applied=applied)

    async def _ack(self, item: _Item, *, applied: bool) -> None:
        try:
            await item.msg.ack()
        except Exception as exc:
            # Committed but not acked: it comes back after ack_wait and is skipped as a duplicate.
            item.span.record_exception(exc)
            log.warning(
                "could not ack an applied event", extra={"subject": item.msg.subject, "error": repr(exc)}
            )
            return
        metrics.consumer_events.labels(self.spec.durable, "applied" if applied else "duplicate").inc()

    async def _apply_once(self, event: event_pb2.Event) -> bool:
        if not event.id:
            raise ValueError("event without id")
        writes: Writes | None = None
        if self.spec.prepare is not None:
            if await self._recorded(event.id):
                return False  # a duplicate: no calls made for it
            writes = await self.spec.prepare(event)
        # A transaction that lost a deadlock runs again at once rather than after a redelivery.
        return await retry_conflicts(lambda: self._apply_in_transaction(event, writes))

    async def _apply_in_transaction(self, event: event_pb2.Event, writes: Writes | None = None) -> bool:
        try:
            async with self.db.transaction() as session:
                seen = await session.scalar(
                    select(self.processed.c.event_id).where(
                        self.processed.c.consumer == self.spec.durable, self.processed.c.event_id == event.id
                    )
                )
                if seen:
                    return False
                await session.execute(
                    insert(self.processed).values(
                        consumer=self.spec.durable, event_id=event.id, processed_at=utcnow()
                    )
                )
                if writes is not None:
                    await writes(session)
                elif self.spec.handler is not None:
                    await self.spec.handler(session, event)
                crashpoint("consumer.before_commit")
        except IntegrityError:
            # Either another replica recorded the same event id first (a duplicate: done), or the
            # handler's own write clashed (a failure: retried, never taken for a duplicate).
            if await self._recorded(event.id):
                return False
            raise
        return True

    async def _recorded_ids(self, event_ids: set[str]) -> set[str]:
        async with self.db.sessions() as session:
            found = await session.scalars(
                select(self.processed.c.event_id).where(
                    self.processed.c.consumer == self.spec.durable, self.processed.c.event_id.in_(event_ids)
                )
            )
            return set(found.all())

    async def _recorded(self, event_id: str) -> bool:
        async with self.db.sessions() as session:
            found = await session.scalar(
                select(self.processed.c.event_id).where(
                    self.processed.c.consumer == self.spec.durable, self.processed.c.event_id == event_id
                )
            )
        return found is not None

    async def _failed(self, msg: Msg, exc: Exception) -> None:
        delivered = msg.metadata.num_delivered
        if delivered >= self.spec.max_deliver:
            subject = dead_letter_subject(self.spec.durable, msg.subject)
            headers = dict(msg.headers or {})
            headers["Gov-Error"] = repr(exc)[:500]
            msg_id = (msg.headers or {}).get(MSG_ID_HEADER, "")
            headers[MSG_ID_HEADER] = f"{msg_id}:{self.spec.durable}"
            try:
                await self.js.publish(subject, msg.data, headers=headers)
            except Exception as publish_error:
                # Not stored, so not acked: the event comes back and is tried (and dead-lettered) again.
                delay = self.spec.backoff[-1]
                log.error(
                    "dead letter not stored; event kept for redelivery in %.1fs",
                    delay,
                    extra={"subject": msg.subject, "error": repr(exc), "publish_error": repr(publish_error)},
                )
                await msg.nak(delay=delay)
                metrics.consumer_events.labels(self.spec.durable, "dead_letter_failed").inc()
                return
            await msg.ack()
            metrics.consumer_events.labels(self.spec.durable, "dead_letter").inc()
            metrics.consumer_dead_letters.labels(self.spec.durable).inc()
            log.error(
                "event dead-lettered after %d deliveries",
                delivered,
                extra={"subject": msg.subject, "dead_letter_subject": subject, "error": repr(exc)},
            )
            return
        delay = self.spec.backoff[min(delivered - 1, len(self.spec.backoff) - 1)]
        log.warning(
            "event handler failed; redelivering in %.1fs",
            delay,
            extra={"subject": msg.subject, "delivery": delivered, "error": repr(exc)},
        )
        await msg.nak(delay=delay)
        metrics.consumer_events.labels(self.spec.durable, "retry").inc()


async def run_consumers(consumers: Sequence[EventConsumer]) -> None:
    await asyncio.gather(*(c.run() for c in consumers))
