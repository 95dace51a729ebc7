"""The consumer's batched mode (`ConsumerSpec.batched`) against real NATS JetStream and both databases:
each event is applied exactly once, whether it comes twice in one batch or again in a later one, and
an event that fails in a batch is retried and dead-lettered as before without losing or duplicating
the batch's other events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2
from govkit.consumer import ConsumerSpec, EventConsumer, Writes
from govkit.db import Database
from govkit.devstack import Stack
from govkit.events import MSG_ID_HEADER, NewEvent, build_event, parse_event
from govkit.tables import PlatformTables
from tests.conftest import STACK_ENV
from tests.support.databases import Databases
from tests.support.waiting import eventually

STREAM = "IDENTITY"
SUBJECT = "identity.v1.user.updated"


@pytest_asyncio.fixture
async def bus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("batched"), base_env=STACK_ENV)
    stack.start_nats()  # with the platform's streams, DEADLETTER included
    try:
        yield stack
    finally:
        stack.stop()


class Counter:
    """A batched consumer counting how often each event was applied, and in which transaction."""

    def __init__(self, db: Database, durable: str, *, prepared: bool = False) -> None:
        self.db, self.durable = db, durable
        self.metadata = MetaData()
        self.tables = PlatformTables(self.metadata)
        self.applied = Table(
            "applied",
            self.metadata,
            Column("event_id", String(36), primary_key=True),
            Column("times", Integer),
            Column("txn", Integer),
        )
        self.transactions = itertools.count(1)
        self.prepared: list[str] = []
        handler = None if prepared else self._count
        self.spec = ConsumerSpec(
            durable=durable,
            stream=STREAM,
            subjects=[SUBJECT],
            handler=handler,
            prepare=self._prepare if prepared else None,
            max_deliver=3,
            ack_wait=2.0,
            backoff=(0.2,),
            batched=True,
        )

    async def _count(self, session: AsyncSession, event: event_pb2.Event) -> None:
        if event.resource == "poison":
            raise ValueError("this event can never be handled")
        txn = session.info.setdefault("txn", next(self.transactions))
        t = self.applied.c
        times = await session.scalar(select(t.times).where(t.event_id == event.id))
        if times is None:
            await session.execute(self.applied.insert().values(event_id=event.id, times=1, txn=txn))
        else:
            await session.execute(update(self.applied).where(t.event_id == event.id).values(times=times + 1))

    async def _prepare(self, event: event_pb2.Event) -> Writes:
        self.prepared.append(event.id)
        if event.resource == "poison":
            raise ValueError("this event's audience can never be resolved")

        async def writes(session: AsyncSession) -> None:
            await self._count(session, event)

        return writes

    async def times(self, event_id: str) -> int | None:
        async with self.db.sessions() as session:
            return await session.scalar(
                select(self.applied.c.times).where(self.applied.c.event_id == event_id)
            )

    async def transaction_of(self, event_id: str) -> int | None:
        async with self.db.sessions() as session:
            return await session.scalar(select(self.applied.c.txn).where(self.applied.c.event_id == event_id))

    async def processed(self, event_id: str) -> int:
        p = self.tables.processed_events.c
        async with self.db.sessions() as session:
            found = await session.scalar(
                select(func.count()).where(p.consumer == self.durable, p.event_id == event_id)
            )
        return int(found or 0)

    @contextlib.asynccontextmanager
    async def running(self, nats_url: str) -> AsyncIterator[EventConsumer]:
        async with self.db.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)
        nc = await nats.connect(nats_url)
        consumer = EventConsumer(self.spec, nc.jetstream(), self.db, self.tables)
        task = asyncio.create_task(consumer.run())
        try:
            yield consumer
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 10)
            await nc.close()


@pytest_asyncio.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(databases.url("batched"))
    yield database
    await database.close()


def _event(resource: str) -> NewEvent:
    return build_event(
        SUBJECT, events_pb2.UserUpdated(changed_fields=["display_name"]), actor="system", resource=resource
    )


async def _publish(nats_url: str, *envelopes: bytes) -> None:
    """Each envelope under a message id of its own: a copy of an event is a redelivery, not deduplicated
    by JetStream's window."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for envelope in envelopes:
            await js.publish(SUBJECT, envelope, headers={MSG_ID_HEADER: str(uuid.uuid4())})
    finally:
        await nc.close()


async def _settled(nats_url: str, durable: str) -> bool:
    """Every message delivered to the durable consumer and acked."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jsm().consumer_info(STREAM, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0
    except nats.js.errors.NotFoundError:
        return False
    finally:
        await nc.close()


async def _dead_letters(nats_url: str) -> list[str]:
    nc = await nats.connect(nats_url)
    try:
        jsm = nc.jsm()
        info = await jsm.stream_info("DEADLETTER")
        if info.state.messages == 0:
            return []
        return [
            parse_event((await jsm.get_msg("DEADLETTER", seq)).data).id
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await nc.close()


async def test_an_event_twice_in_one_batch_is_applied_once_in_the_batchs_transaction(
    bus: Stack, db: Database
) -> None:
    counter = Counter(db, "batched-inside")
    first, second, third = _event("users/1"), _event("users/2"), _event("users/3")
    # All published before the consumer starts, so its first fetch takes them together.
    await _publish(bus.nats_url, first.envelope, second.envelope, first.envelope, third.envelope)
    async with counter.running(bus.nats_url):
        await eventually(lambda: _settled(bus.nats_url, "batched-inside"), within=20)
    for e in (first, second, third):
        assert await counter.times(e.id) == 1
        assert await counter.processed(e.id) == 1
    # One transaction for the batch (the point of batching), not one per event.
    assert {await counter.transaction_of(e.id) for e in (first, second, third)} == {1}


async def test_an_event_again_in_a_later_batch_is_acked_and_not_applied(bus: Stack, db: Database) -> None:
    counter = Counter(db, "batched-across", prepared=True)
    first, second = _event("users/1"), _event("users/2")
    await _publish(bus.nats_url, first.envelope)
    async with counter.running(bus.nats_url):
        await eventually(lambda: _settled(bus.nats_url, "batched-across"), within=20)
        assert await counter.times(first.id) == 1
        await _publish(bus.nats_url, first.envelope, second.envelope, first.envelope)
        await eventually(lambda: _settled(bus.nats_url, "batched-across"), within=20)
        await asyncio.sleep(2.5)  # past ack_wait: nothing comes back
        assert await _settled(bus.nats_url, "batched-across")
    assert await counter.times(first.id) == 1 and await counter.times(second.id) == 1
    assert await counter.processed(first.id) == 1
    # A duplicate is recognised before its preparation (no calls to other services for it).
    assert counter.prepared.count(first.id) == 1


@pytest.mark.parametrize("prepared", [False, True], ids=["handler", "prepare"])
async def test_a_failing_event_in_a_batch_is_dead_lettered_and_the_others_applied_once(
    bus: Stack, db: Database, prepared: bool
) -> None:
    durable = f"batched-poison-{'prepare' if prepared else 'handler'}"
    counter = Counter(db, durable, prepared=prepared)
    good = [_event(f"users/{i}") for i in range(5)]
    poison = _event("poison")
    envelopes = [e.envelope for e in good[:2]] + [poison.envelope] + [e.envelope for e in good[2:]]
    await _publish(bus.nats_url, *envelopes, good[0].envelope)  # and one good event again
    async with counter.running(bus.nats_url):

        async def done() -> bool:
            return await _settled(bus.nats_url, durable) and poison.id in await _dead_letters(bus.nats_url)

        await eventually(done, within=30)
        await asyncio.sleep(2.5)  # past ack_wait: nothing comes back
        assert await _settled(bus.nats_url, durable)
    for e in good:
        assert await counter.times(e.id) == 1, e.id
        assert await counter.processed(e.id) == 1
    assert await counter.times(poison.id) is None
    assert await counter.processed(poison.id) == 0
    assert (await _dead_letters(bus.nats_url)).count(poison.id) == 1
    if prepared:
        # Its preparation failed alone: the batch's others went on in one transaction.
        assert len({await counter.transaction_of(e.id) for e in good}) == 1
        assert counter.prepared.count(poison.id) == 3  # max_deliver


async def test_with_the_database_down_each_event_of_a_batch_is_retried_and_dead_lettered(bus: Stack) -> None:
    """As one handled alone: the failed duplicate check does not stall the batch unacked."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there: every connection is refused
    db = Database(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
    counter = Counter(db, "batched-no-database")
    events = [_event("users/1"), _event("users/2")]
    await _publish(bus.nats_url, *(e.envelope for e in events))
    nc = await nats.connect(bus.nats_url)
    consumer = EventConsumer(counter.spec, nc.jetstream(), db, counter.tables)
    task = asyncio.create_task(consumer.run())
    try:

        async def dead_lettered() -> bool:
            return sorted(await _dead_letters(bus.nats_url)) == sorted(e.id for e in events)

        await eventually(dead_lettered, within=30)
        await eventually(lambda: _settled(bus.nats_url, "batched-no-database"), within=20)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await nc.close()
        await db.close()
