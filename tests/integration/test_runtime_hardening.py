"""The service runtime under contention and outages: deadlocks, housekeeping, broker and service
restarts. Real databases, real processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import uuid

import grpc
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit import migrations
from govkit.db import Database, TransactionConflict, retry_conflicts, utcnow
from govkit.devstack import REPO, Stack, free_port, wait_serving
from govkit.tables import PlatformTables
from services.tickets import statistics
from services.tickets.models import MonthStats
from tests.conftest import TELEMETRY_ENV, identity_env
from tests.integration.test_tickets import Desk, assert_district_sums_agree
from tests.support.databases import Databases
from tests.support.identity import IdentityClient
from tests.support.tickets import make_world


def _postgres_only(databases: Databases) -> None:
    if databases.backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time: transactions cannot deadlock")


# ------------------------------------------------------------------------ deadlocks (item 6)


async def _slow_row_locks(db: Database, table: str, seconds: float) -> None:
    """Every row written to `table` keeps its transaction busy a while, with the row locked: two
    transactions that lock the same rows in opposite orders then deadlock for sure."""
    async with db.transaction() as session:
        await session.execute(
            text(
                "CREATE OR REPLACE FUNCTION test_linger() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
            )
        )
        await session.execute(
            text(
                f"CREATE TRIGGER test_linger AFTER INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_linger()"
            )
        )


async def test_statistics_of_a_dispatch_and_a_return_racing_do_not_deadlock(databases: Databases) -> None:
    """A dispatch moves a ticket's counts from no unit to unit U, a return from U back to none: both
    touch the same two month rows. Updated in the order each change lists them they deadlock;
    updated in key order the second waits for the first."""
    _postgres_only(databases)
    url = databases.url("tickets")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/tickets/migrations", url)
    db = Database(url)
    try:
        unassigned = ("d-race", "2026-05", "lift", "")
        with_unit = ("d-race", "2026-05", "lift", "rapid")
        accepted = statistics.Contribution(key=unassigned, counts=(("accepted", 1), ("total", 1)))
        dispatched = statistics.Contribution(key=with_unit, counts=(("dispatched", 1), ("total", 1)))
        async with db.transaction() as session:  # two tickets: one waiting, one with the unit
            await statistics.record(session, None, accepted)
            await statistics.record(session, None, dispatched)
        await _slow_row_locks(db, "month_stats", 0.3)
        ready = asyncio.Barrier(2)

        async def move(before: statistics.Contribution, after: statistics.Contribution) -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))  # connected: both start together
                await ready.wait()
                await statistics.record(session, before, after)

        # No retry here: a deadlock would raise TransactionConflict.
        await asyncio.gather(move(accepted, dispatched), move(dispatched, accepted))
        async with db.sessions() as session:
            rows = {
                r.lead_unit: (r.total, r.accepted, r.dispatched)
                for r in (await session.execute(select(MonthStats))).scalars()
            }
        assert rows == {"": (1, 1, 0), "rapid": (1, 0, 1)}
    finally:
        await db.close()


pairs = Table("pairs", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))


async def test_a_transaction_that_loses_a_deadlock_is_run_again(databases: Databases) -> None:
    _postgres_only(databases)
    db = Database(databases.url("deadlock"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(pairs.metadata.create_all)
            await conn.execute(insert(pairs), [{"id": 1, "n": 0}, {"id": 2, "n": 0}])
        await _slow_row_locks(db, "pairs", 0.3)
        runs: list[str] = []
        first_round = asyncio.Barrier(2)

        async def add_one_to_both(name: str, first: int, second: int) -> None:
            runs.append(name)
            async with db.transaction() as session:
                await session.execute(update(pairs).where(pairs.c.id == first).values(n=pairs.c.n + 1))
                if runs.count(name) == 1:
                    await first_round.wait()  # both hold their first row: opposite orders deadlock
                await session.execute(update(pairs).where(pairs.c.id == second).values(n=pairs.c.n + 1))

        await asyncio.gather(
            retry_conflicts(lambda: add_one_to_both("a", 1, 2)),
            retry_conflicts(lambda: add_one_to_both("b", 2, 1)),
        )
        # PostgreSQL rolled one back; it ran again and both changes are in, once each.
        assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])
        async with db.sessions() as session:
            assert dict((await session.execute(select(pairs.c.id, pairs.c.n))).all()) == {1: 2, 2: 2}

        # Without the retry the loser gets ABORTED (a client may try again), never INTERNAL.
        runs.clear()
        first_round = asyncio.Barrier(2)
        outcomes = await asyncio.gather(
            add_one_to_both("a", 1, 2), add_one_to_both("b", 2, 1), return_exceptions=True
        )
        [lost] = [o for o in outcomes if o is not None]
        assert isinstance(lost, TransactionConflict) and lost.code.name == "ABORTED"
    finally:
        await db.close()


async def test_work_that_already_committed_is_not_run_again(databases: Databases) -> None:
    """After one of its transactions committed, a conflict in a later one is raised, not retried:
    running the work again would do the committed part twice."""
    db = Database(databases.url("retry"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(pairs.metadata.create_all)
            await conn.execute(insert(pairs), [{"id": 1, "n": 0}])
        runs = 0

        async def commit_then_conflict() -> None:
            nonlocal runs
            runs += 1
            async with db.transaction() as session:
                await session.execute(update(pairs).values(n=pairs.c.n + 1))
            raise TransactionConflict("a later transaction lost a race")

        with pytest.raises(TransactionConflict):
            await retry_conflicts(commit_then_conflict)
        assert runs == 1
        async with db.sessions() as session:
            assert await session.scalar(select(pairs.c.n)) == 1
    finally:
        await db.close()


# ------------------------------------------------------------------------ housekeeping (item 12)


async def test_housekeeping_prunes_old_ids_and_keeps_recent_ones(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A running service prunes processed event ids and client request ids older than the retention
    (default 7 days) and published outbox rows older than a day, in batches; newer rows stay, and
    so does an old event that is not published yet."""
    url = databases.url("identity")
    env = identity_env(url)
    stack = Stack(tmp_path_factory.mktemp("housekeeping"), base_env=TELEMETRY_ENV)
    stack.run_command("identity", "migrate", env)
    tables = PlatformTables(MetaData())
    now = utcnow()
    old, recent = now - dt.timedelta(days=8), now - dt.timedelta(days=6)

    def ids(n: int) -> list[str]:
        return [str(uuid.uuid4()) for _ in range(n)]

    old_events, recent_events = ids(5), ids(2)
    old_requests, recent_requests = ids(5), ids(2)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(tables.processed_events),
                [{"consumer": "c", "event_id": e, "processed_at": old} for e in old_events]
                + [{"consumer": "c", "event_id": e, "processed_at": recent} for e in recent_events],
            )
            await session.execute(
                insert(tables.idempotency),
                [{"scope": "s", "request_id": r, "resource": "x", "created_at": old} for r in old_requests]
                + [
                    {"scope": "s", "request_id": r, "resource": "x", "created_at": recent}
                    for r in recent_requests
                ],
            )
            outbox_rows = [
                (str(uuid.uuid4()), old, now - dt.timedelta(days=2)),  # published long ago: goes
                (str(uuid.uuid4()), old, now - dt.timedelta(days=2)),
                (str(uuid.uuid4()), old, now - dt.timedelta(days=2)),
                (str(uuid.uuid4()), now, now - dt.timedelta(hours=1)),  # published an hour ago: stays
                (str(uuid.uuid4()), old, None),  # never published (no broker here): stays
            ]
            await session.execute(
                insert(tables.outbox),
                [
                    {
                        "event_id": e,
                        "subject": "identity.v1.test.kept",
                        "data": b"",
                        "headers": "{}",
                        "created_at": created,
                        "published_at": published,
                    }
                    for e, created, published in outbox_rows
                ],
            )
        port = free_port()
        proc = stack.spawn(
            "identity",
            [sys.executable, "-m", "services.identity", "serve"],
            stack.env(
                **env,
                GOV_GRPC_PORT=str(port),
                GOV_NATS_URL=f"nats://127.0.0.1:{free_port()}",  # no broker: not needed here
                GOV_HOUSEKEEPING_INTERVAL_SECONDS="0.5",
                GOV_HOUSEKEEPING_BATCH="2",  # five old rows: three batches
            ),
        )
        wait_serving(f"127.0.0.1:{port}", 30, proc.popen)

        async def left() -> tuple[set[str], set[str], set[str]]:
            async with db.sessions() as session:
                return (
                    set((await session.execute(select(tables.processed_events.c.event_id))).scalars()),
                    set((await session.execute(select(tables.idempotency.c.request_id))).scalars()),
                    set(
                        (
                            await session.execute(
                                select(tables.outbox.c.event_id).where(
                                    tables.outbox.c.subject == "identity.v1.test.kept"
                                )
                            )
                        ).scalars()
                    ),
                )

        deadline = time.monotonic() + 30
        while (remaining := await left()) != (
            set(recent_events),
            set(recent_requests),
            {outbox_rows[3][0], outbox_rows[4][0]},
        ):
            assert time.monotonic() < deadline, f"not pruned as expected: {remaining}"
            assert proc.popen.poll() is None, proc.tail()
            await asyncio.sleep(0.2)
    finally:
        stack.stop()
        await db.close()


async def test_concurrent_dispatches_and_returns_all_succeed_and_the_sums_agree(
    stack: Stack, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    """Dispatches (no unit -> a unit) racing returns (that unit -> none) through the tickets service:
    each answers OK (before: a deadlock on PostgreSQL surfaced as INTERNAL) and the district's month
    sums still match its tickets."""
    async with grpc.aio.insecure_channel(stack.addrs["tickets"]) as channel:
        tickets = TicketsServiceStub(channel)
        desk = Desk(tickets, await make_world(blocks, tickets, identity))
        unit = desk.unit("other")
        made = await asyncio.gather(*(desk.report() for _ in range(16)))
        await asyncio.gather(*(desk.act("dispatcher", t, pb.ACTION_ACCEPT) for t in made))
        to_return, to_dispatch = made[:8], made[8:]
        await asyncio.gather(
            *(desk.act("dispatcher", t, pb.ACTION_DISPATCH, lead_unit=unit) for t in to_return)
        )
        outcomes = await asyncio.gather(
            *(desk.act("dispatcher", t, pb.ACTION_DISPATCH, lead_unit=unit) for t in to_dispatch),
            *(desk.act("unit:other", t, pb.ACTION_RETURN, reason="不属于本中心职责") for t in to_return),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert failures == []
        assert [o.state for o in outcomes] == [pb.TICKET_STATE_DISPATCHED] * 8 + [
            pb.TICKET_STATE_ACCEPTED
        ] * 8
        figures = await assert_district_sums_agree(desk)
        states = {c.state: c.count for c in figures.by_state}
        assert (figures.total, states[pb.TICKET_STATE_DISPATCHED], states[pb.TICKET_STATE_ACCEPTED]) == (
            16,
            8,
            8,
        )
