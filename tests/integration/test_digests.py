"""Digests on a real database (both backends), the clock injected: a digest holds exactly the held
items due by its time, each goes out in one digest only, also when a new runner (a restarted
service) looks again; items of a later window stay held for it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import select

from govkit import migrations
from govkit.db import Database
from govkit.devstack import REPO
from services.notifications.digests import DigestRunner
from services.notifications.domain import State
from services.notifications.models import Delivery
from tests.support.databases import Databases

T0 = dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai


def held(person: str, due: dt.datetime, subject: str, created: dt.datetime) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        event_id=str(uuid.uuid4()),
        recipient=person,
        channel="email",
        kind="ticket.overdue",
        node="yuhu/wanlou",
        subject=subject,
        body=subject,
        link="",
        state=State.HELD.value,
        attempts=0,
        last_error="",
        next_attempt_time=due,
        lease_until=None,
        create_time=created,
        update_time=created,
        sent_time=None,
        digest_id=None,
    )


async def test_a_digest_takes_exactly_its_window_once_also_after_a_restart(databases: Databases) -> None:
    url = databases.url("digests")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/notifications/migrations", url)
    db = Database(url)
    person, other = f"users/{uuid.uuid4()}", f"users/{uuid.uuid4()}"
    tomorrow = T0 + dt.timedelta(days=1)
    try:
        async with db.transaction() as session:
            for i in range(3):
                session.add(held(person, T0, f"工单{i}超时", T0 - dt.timedelta(hours=3 - i)))
            session.add(held(person, tomorrow, "明天的", T0 + dt.timedelta(minutes=5)))
            session.add(held(other, T0, "别人的", T0 - dt.timedelta(hours=1)))
        # Before the digest time nothing goes.
        early = DigestRunner(db, lambda: None, 1, clock=lambda: T0 - dt.timedelta(seconds=1))
        assert await early.release() == 0
        runner = DigestRunner(db, lambda: None, 1, clock=lambda: T0)
        assert await runner.release() == 2  # one per person
        # A restarted service (a new runner) at the same moment finds nothing left to send.
        assert (
            await DigestRunner(db, lambda: None, 1, clock=lambda: T0 + dt.timedelta(minutes=1)).release() == 0
        )
        async with db.sessions() as session:
            rows = (
                await session.scalars(select(Delivery).where(Delivery.recipient.in_([person, other])))
            ).all()
        digests = {r.id: r for r in rows if r.kind == "digest"}
        mine = [d for d in digests.values() if d.recipient == person]
        assert len(mine) == 1 and len(digests) == 2
        (digest,) = mine
        assert digest.state == State.QUEUED.value and digest.subject == "消息汇总：3条"
        assert digest.body.splitlines() == ["1. 工单0超时", "2. 工单1超时", "3. 工单2超时"]
        items = [r for r in rows if r.recipient == person and r.kind != "digest"]
        assert (
            sorted((r.state, r.digest_id) for r in items if r.subject != "明天的")
            == [(State.DIGESTED.value, digest.id)] * 3
        )
        (later,) = [r for r in items if r.subject == "明天的"]
        assert (later.state, later.digest_id) == (State.HELD.value, None)
        # Tomorrow's digest takes only tomorrow's item.
        assert await DigestRunner(db, lambda: None, 1, clock=lambda: tomorrow).release() == 1
        async with db.sessions() as session:
            second = (
                await session.scalars(
                    select(Delivery).where(
                        Delivery.recipient == person, Delivery.kind == "digest", Delivery.id != digest.id
                    )
                )
            ).one()
        assert second.body == "1. 明天的"
    finally:
        await db.close()
