"""The delivery worker: sends queued deliveries on the outside channels, in the service process.

A delivery is claimed in a short transaction (state `sending`, a lease, one more attempt), sent
with no transaction open, and its outcome recorded in another short one. A worker killed between
sending and recording leaves the lease to expire; another takes the row over and sends again —
at least once, with the same dedupe key for the receiver to drop the repeat. Rows of other
replicas are claimed only by a conditional update, so no two workers hold one row.

The worker sleeps until woken in-process (a consumer queued deliveries) or until the next retry
or lease falls due, at most the slow interval: the database is not polled in a loop. Its clock
is an argument (the service's, see NotificationsSettings.notifications_clock_offset_seconds), so a
test can run it at 06:59 in Shanghai and watch quiet hours end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gov.notifications.v1 import events_pb2
from gov.notifications.v1 import notifications_pb2 as pb
from govkit import metrics
from govkit.db import Database, rowcount, utcnow
from govkit.errors import Unavailable
from govkit.events import NewEvent, build_event
from govkit.outbox import add_event
from services.notifications.addresses import AddressBook, NoAddress
from services.notifications.channels import Channel, Outgoing, SendError
from services.notifications.domain import RetryPolicy, State, dedupe_key
from services.notifications.models import Delivery, platform

log = logging.getLogger(__name__)

_CHANNEL_ENUM = {"webhook": pb.CHANNEL_WEBHOOK, "sms": pb.CHANNEL_SMS, "email": pb.CHANNEL_EMAIL}


class RateLimiter:
    """A token bucket per channel: at most `rate` sends a second, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass(frozen=True)
class WorkerSettings:
    policy: RetryPolicy
    lease: dt.timedelta
    interval: float
    concurrency: int
    batch: int = 50


def _due(now: dt.datetime) -> ColumnElement[bool]:
    t = Delivery.__table__.c
    return or_(
        and_(t.state.in_((State.QUEUED.value, State.FAILED.value)), t.next_attempt_time <= now),
        and_(t.state == State.SENDING.value, t.lease_until < now),
    )


@dataclass(eq=False)
class DeliveryWorker:
    db: Database
    channels: dict[str, Channel]
    limits: dict[str, RateLimiter]
    addresses: AddressBook
    settings: WorkerSettings
    clock: Callable[[], dt.datetime] = utcnow

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.settings.concurrency)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                # Cleared before looking, so a wake-up during the look is not lost.
                self._wake.clear()
                claimed = await self.claim()
                if claimed:
                    await asyncio.gather(*(self._deliver(row) for row in claimed))
                    continue  # more may be due
                await self._sleep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker failed; going on")
                await asyncio.sleep(1)

    async def _sleep(self) -> None:
        timeout = self.settings.interval
        async with self.db.sessions() as session:
            t = Delivery.__table__.c
            soonest = await session.scalar(
                select(func.min(t.next_attempt_time)).where(
                    t.state.in_((State.QUEUED.value, State.FAILED.value))
                )
            )
        if soonest is not None:
            timeout = max(0.05, min(timeout, (soonest - self.clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def claim(self) -> list[Delivery]:
        """Take due deliveries for this worker, each by a conditional update (one owner per row)."""
        now = self.clock()
        async with self.db.sessions() as session:
            ids = (
                await session.scalars(
                    select(Delivery.id)
                    .where(_due(now))
                    .order_by(Delivery.next_attempt_time)
                    .limit(self.settings.batch)
                )
            ).all()
        if not ids:
            return []
        claimed: list[str] = []
        async with self.db.transaction() as session:
            for delivery_id in ids:
                result = await session.execute(
                    update(Delivery)
                    .where(Delivery.id == delivery_id, _due(now))
                    .values(
                        state=State.SENDING.value,
                        lease_until=now + self.settings.lease,
                        attempts=Delivery.attempts + 1,
                        update_time=now,
                    )
                )
                if rowcount(result) == 1:
                    claimed.append(delivery_id)
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(Delivery).where(Delivery.id.in_(claimed)))).all()
        return list(rows)

    async def _deliver(self, row: Delivery) -> None:
        async with self._slots:
            error = ""
            try:
                address = await self.addresses.find(row.channel, row.recipient)
                await self.limits[row.channel].take()
                message = Outgoing(
                    delivery_id=row.id,
                    dedupe_key=dedupe_key(row.event_id, row.recipient, row.channel),
                    kind=row.kind,
                    subject=row.subject,
                    body=row.body,
                    link=row.link,
                )
                await self.channels[row.channel].send(message, address)
            except (SendError, NoAddress, Unavailable) as exc:
                # Unavailable: identity could not say where to send it (an outage); tried again later.
                error = str(exc)
            except Exception as exc:
                log.exception("delivery failed unexpectedly", extra={"delivery": row.id})
                error = f"internal: {type(exc).__name__}"
            await self._record(row, error)

    async def _record(self, row: Delivery, error: str) -> None:
        now = self.clock()
        mine = and_(
            Delivery.id == row.id, Delivery.state == State.SENDING.value, Delivery.attempts == row.attempts
        )
        if not error:
            async with self.db.transaction() as session:
                await session.execute(
                    update(Delivery)
                    .where(mine)
                    .values(
                        state=State.SENT.value,
                        sent_time=now,
                        lease_until=None,
                        update_time=now,
                        last_error="",
                    )
                )
            metrics.count_notification(row.channel, sent=True)
            return
        async with self.db.transaction() as session:
            state, next_time = self.settings.policy.after_failure(row.attempts, now)
            changed = await session.execute(
                update(Delivery)
                .where(mine)
                .values(
                    state=state.value,
                    next_attempt_time=next_time,
                    lease_until=None,
                    update_time=now,
                    last_error=error[:500],
                )
            )
            if state is State.DEAD and rowcount(changed) == 1:
                await add_event(session, platform.outbox, dead_letter_event(row))
        metrics.count_notification(row.channel, sent=False)
        if state is State.DEAD:
            log.warning(
                "delivery dead-lettered", extra={"delivery": row.id, "channel": row.channel, "error": error}
            )


def dead_letter_event(row: Delivery) -> NewEvent:
    payload = events_pb2.DeliveryFailed(
        delivery=f"deliveries/{row.id}",
        recipient=row.recipient,
        channel=_CHANNEL_ENUM[row.channel],
        kind=row.kind,
        event_id=row.event_id,
        attempts=row.attempts,
        node=row.node,
    )
    return build_event(
        "notifications.v1.delivery.failed", payload, actor="system", resource=f"deliveries/{row.id}"
    )


def limiters(rates: dict[str, float]) -> dict[str, RateLimiter]:
    return {channel: RateLimiter(rate) for channel, rate in rates.items()}
