"""The service runtime under contention and outages: deadlocks, housekeeping, broker and service
restarts. Real databases, real processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from statistics import median

import grpc
import httpx
import nats
import pytest
import pytest_asyncio
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpc_health.v1.health_pb2_grpc import HealthStub
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit import migrations
from govkit.db import Database, TransactionConflict, retry_conflicts, utcnow
from govkit.devstack import REPO, Stack, free_port, wait_serving
from govkit.events import parse_event
from govkit.outbox import publisher_lock
from govkit.tables import PlatformTables
from services.tickets import statistics
from services.tickets.models import MonthStats
from tests.conftest import STACK_ENV, identity_env, stack_of_its_own, start_platform
from tests.integration.test_tickets import Desk, assert_district_sums_agree
from tests.support.databases import Databases
from tests.support.identity import IdentityClient
from tests.support.tickets import World, make_world


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


# ------------------------------------------------------------------------ outbox relay (item 7)


async def test_one_relay_per_database_publishes_at_a_time(databases: Databases) -> None:
    """Two replicas' relays on one database: while one holds the publisher lock (with no transaction
    open: it publishes outside any), the other's round does nothing; released, the other gets it."""
    url = databases.url("relay")
    first, second = Database(url), Database(url)
    locks = [publisher_lock(first), publisher_lock(second)]
    try:
        assert await locks[0].acquire()
        assert not await locks[1].acquire()
        async with first.transaction() as session:  # the database is free for everyone else
            await session.execute(text("SELECT 1"))
        await locks[0].release()
        assert await locks[1].acquire()
        assert not await locks[0].acquire()
        # A holder that goes away (its connection closed, its process dead) frees it too.
        await locks[1].close()
        assert await locks[0].acquire()
        await locks[0].release()
    finally:
        for lock in locks:
            await lock.close()
        await first.close()
        await second.close()


# ------------------------------------------------------------------------ housekeeping (item 12)


async def test_housekeeping_prunes_old_ids_and_keeps_recent_ones(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A running service prunes processed event ids and client request ids older than the retention
    (default 7 days) and published outbox rows older than a day, in batches; newer rows stay, and
    so does an old event that is not published yet."""
    url = databases.url("identity")
    env = identity_env(url)
    stack = Stack(tmp_path_factory.mktemp("housekeeping"), base_env=STACK_ENV)
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


# ------------------------------------------------- broker outage and service restarts (items 7-9)

OUTAGE_SECONDS = 30.0
WARM_UP_SECONDS = 3.0
NORMAL_WINDOW_SECONDS = 10.0
LOAD_CLIENTS = 8


@pytest.fixture(scope="module")
def outage_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A platform of its own: these tests stop NATS and restart services under it."""
    with stack_of_its_own(tmp_path_factory, "outage") as s:
        start_platform(s, databases, with_points=False)
        yield s


@pytest_asyncio.fixture(scope="module")
async def outage_world(outage_stack: Stack) -> AsyncIterator[World]:
    identity = await IdentityClient(outage_stack.addrs["identity"]).start()
    try:
        async with (
            grpc.aio.insecure_channel(outage_stack.addrs["blocks"]) as bch,
            grpc.aio.insecure_channel(outage_stack.addrs["tickets"]) as tch,
        ):
            yield await make_world(BlocksServiceStub(bch), TicketsServiceStub(tch), identity)
    finally:
        await identity.close()


class TicketLoad:
    """Residents creating tickets through the gateway as fast as it answers, every answer timed."""

    def __init__(self, gateway_url: str, world: World) -> None:
        self.http = httpx.AsyncClient(
            base_url=gateway_url,
            timeout=30,
            limits=httpx.Limits(max_connections=LOAD_CLIENTS),
            headers={"Authorization": f"Bearer {world.staff['resident'].token}"},
        )
        self.body = {
            "category": world.category,
            "title": "3栋电梯停在5楼不动",
            "description": "电梯门打不开",
            "node": world.blocks[0],
            "location": {"address": "3栋1单元"},
            "attributes": [{"code": "building", "values": ["3栋"]}],
        }
        self.created: list[tuple[float, str]] = []  # (when it answered, ticket name)
        self.failed: list[tuple[float, int, str]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(LOAD_CLIENTS)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.http.aclose()

    async def _client(self) -> None:
        while not self._stop.is_set():
            try:
                reply = await self.http.post("/api/v1/tickets", json=self.body)
            except httpx.HTTPError as exc:
                self.failed.append((time.monotonic(), 0, repr(exc)))
                continue
            if reply.status_code == 201:
                self.created.append((time.monotonic(), reply.json()["name"]))
            else:
                self.failed.append((time.monotonic(), reply.status_code, reply.text[:200]))

    def rate(self, start: float, end: float) -> float:
        """Tickets per second in [start, end): the median of its whole seconds, so a neighbour's
        burst of CPU on this shared machine moves it less than it moves a plain average."""
        seconds = [0] * int(end - start)
        for t, _ in self.created:
            if start <= t < start + len(seconds):
                seconds[int(t - start)] += 1
        return median(seconds)


async def _created_events(nats_url: str) -> Counter[str]:
    """How many `tickets.v1.ticket.created` events the stream holds for each ticket."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe("tickets.v1.ticket.created", ordered_consumer=True)
        seen: Counter[str] = Counter()
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return seen
            seen[parse_event(msg.data).resource] += 1
    finally:
        await nc.close()


async def _until_created(nats_url: str, created: list[str], within: float = 60) -> Counter[str]:
    """`_created_events` once every ticket in `created` has its event there (or `within` s passed)."""
    deadline = time.monotonic() + within
    while True:
        events = await _created_events(nats_url)
        if all(events[name] for name in created) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(1)


async def _serving(addr: str) -> bool:
    """One health check on a fresh channel (no reconnect backoff carried over from earlier tries)."""
    async with grpc.aio.insecure_channel(addr) as channel:
        try:
            reply = await HealthStub(channel).Check(HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
    return reply.status == HealthCheckResponse.SERVING


async def test_nats_outage_keeps_ticket_creation_fast_and_everything_ready_and_loses_nothing(
    outage_stack: Stack, outage_world: World
) -> None:
    """NATS is killed for 30 s under load. Ticket creation keeps at least half its normal rate
    (before: 1.5/s instead of 80/s on SQLite, every request waiting out the publish timeout), the
    services stay SERVING and the gateway ready, and afterwards every ticket's event is on the
    stream exactly once."""
    stack = outage_stack
    nats_port = int(stack.nats_url.rsplit(":", 1)[1])
    load = TicketLoad(stack.gateway_url, outage_world)
    not_ready: list[str] = []
    load.start()
    try:
        started = time.monotonic()
        await asyncio.sleep(WARM_UP_SECONDS + NORMAL_WINDOW_SECONDS)
        normal = load.rate(started + WARM_UP_SECONDS, time.monotonic())
        stack.kill_proc(stack.proc("nats"))
        outage_start = time.monotonic()
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=5) as probe:
            while time.monotonic() < outage_start + OUTAGE_SECONDS:
                ready = await probe.get("/readyz")
                if ready.status_code != 200:
                    not_ready.append(f"gateway: {ready.status_code} {ready.text}")
                for service in ("identity", "blocks", "tickets"):
                    if not await _serving(stack.addrs[service]):
                        not_ready.append(service)
                await asyncio.sleep(1.0)
        outage_end = time.monotonic()
        during = load.rate(outage_start, outage_end)
        stack.start_nats(port=nats_port)
        await asyncio.sleep(3)  # the relays reconnect and publish the backlog under load
    finally:
        await load.stop()
    print(f"tickets created per second: normal {normal:.1f}, NATS down {during:.1f}")
    assert load.failed == []
    assert not_ready == []
    # On a quiet machine the rate holds (65 -> 67/s on SQLite, 90 -> 102/s on PostgreSQL), but make
    # test runs the other backend's half on the same two cores, and its bursts moved one window
    # against the other by up to a quarter (88.5 -> 66/s in CI). Half still fails the regression
    # this guards against, a fall to 2% of the rate, by a wide margin.
    assert during >= 0.5 * normal, f"{during:.1f}/s while NATS was down, {normal:.1f}/s before"
    created = [name for _, name in load.created]
    events = await _until_created(stack.nats_url, created)
    missing = [name for name in created if events[name] == 0]
    assert missing == [], f"{len(missing)} of {len(created)} events never reached the stream"
    assert [name for name in created if events[name] != 1] == []


async def test_a_restarted_service_is_back_through_the_gateway_within_half_a_second(
    outage_stack: Stack, outage_world: World
) -> None:
    """The tickets service is stopped: only its routes answer 503 problem+json while the gateway
    stays ready. It is started again; from its health turning SERVING to the first 200 through the
    gateway takes at most 0.5 s (it was 2.4-2.6 s, waiting out gRPC's reconnect backoff)."""
    stack = outage_stack
    token = outage_world.staff["resident"].token
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        load = TicketLoad(stack.gateway_url, outage_world)
        created = await load.http.post("/api/v1/tickets", json=load.body)
        await load.http.aclose()
        assert created.status_code == 201
        path = f"/api/v1/tickets/{created.json()['id']}"
        assert (await http.get(path)).status_code == 200
        addr = stack.addrs["tickets"]
        port = int(addr.rsplit(":", 1)[1])
        env = stack.service_envs["tickets"]
        stack.stop_proc(stack.proc("tickets"))

        down = await http.get(path)
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/problem+json")
        asked = time.monotonic()
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["tickets"] != "SERVING"
        assert time.monotonic() - asked < 1.0  # a probe's timeout is short: it must not wait
        assert (await http.get("/api/v1/me")).status_code == 200  # other upstreams unaffected
        await asyncio.sleep(3.0)  # down for a while (as in the 3.1 s outage measured): channels back off

        proc = stack.launch_service("tickets", env, port=port)
        serving_at: float | None = None
        ok_at: float | None = None

        async def watch_health() -> None:
            nonlocal serving_at
            while not await _serving(addr):
                assert proc.popen.poll() is None, proc.tail()
                await asyncio.sleep(0.02)
            serving_at = time.monotonic()

        async def poll_gateway() -> None:
            nonlocal ok_at
            while (await http.get(path)).status_code != 200:
                pass
            ok_at = time.monotonic()

        await asyncio.wait_for(asyncio.gather(watch_health(), poll_gateway()), 60)
        assert serving_at is not None and ok_at is not None
        print(f"tickets SERVING -> first 200 through the gateway: {ok_at - serving_at:.3f} s")
        assert ok_at - serving_at <= 0.5


async def test_a_service_killed_under_load_loses_and_duplicates_no_event(
    outage_stack: Stack, outage_world: World
) -> None:
    """kill -9 of the tickets service while tickets are being created, then a restart: its relay
    held the publisher lock (an flock, or a PostgreSQL session) that died with it, so the new
    process takes over, and every ticket that was answered 201 has its event exactly once."""
    stack = outage_stack
    addr = stack.addrs["tickets"]
    load = TicketLoad(stack.gateway_url, outage_world)
    load.start()
    try:
        await asyncio.sleep(3)
        stack.kill_proc(stack.proc("tickets"))
        await asyncio.sleep(1)
        proc = stack.launch_service(
            "tickets", stack.service_envs["tickets"], port=int(addr.rsplit(":", 1)[1])
        )
        wait = time.monotonic() + 30
        while not await _serving(addr):
            assert time.monotonic() < wait and proc.popen.poll() is None, proc.tail()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
    finally:
        await load.stop()
    created = [name for _, name in load.created]
    assert len(created) > 10
    events = await _until_created(stack.nats_url, created)
    missing = [name for name in created if events[name] == 0]
    assert missing == [], f"{len(missing)} of {len(created)} events never reached the stream"
    assert {name: n for name, n in events.items() if n != 1} == {}


async def test_the_gateway_killed_under_load_loses_and_duplicates_nothing(
    outage_stack: Stack, outage_world: World
) -> None:
    """kill -9 of the gateway while residents report, then a restart on the same port. A client
    whose request died with the gateway retries it with the same Idempotency-Key: every report ends
    as exactly one ticket with exactly one event, and no answer is ever a 5xx other than 503."""
    stack = outage_stack
    url = stack.gateway_url
    port = int(url.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {outage_world.staff['resident'].token}"}
    body = TicketLoad(url, outage_world).body
    created: dict[str, str] = {}  # Idempotency-Key -> ticket name
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            key = str(uuid.uuid4())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # one report, retried until it is answered
                try:
                    reply = await http.post("/api/v1/tickets", json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
                    continue
                statuses[reply.status_code] += 1
                if reply.status_code == 201:
                    created[key] = reply.json()["name"]
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"report {key} never answered 201")

    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(LOAD_CLIENTS)]
        await asyncio.sleep(3)
        stack.kill_proc(stack.proc("gateway"))
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.start_gateway, port)
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*tasks)

    assert len(created) > 10
    assert {s for s in statuses if s >= 500 and s != 503} == set(), statuses
    assert len(set(created.values())) == len(created), "a retried report became a second ticket"
    events = await _until_created(stack.nats_url, list(created.values()))
    missing = [name for name in created.values() if events[name] == 0]
    assert missing == [], f"{len(missing)} of {len(created)} events never reached the stream"
    assert {name: n for name, n in events.items() if n != 1} == {}
