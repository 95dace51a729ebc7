"""Crash tests: no committed event is lost or published twice; no event is applied twice.

Processes are killed at named crash points (GOV_CRASHPOINT), which exit on the spot like
kill -9: no cleanup, no flush, no ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from sqlalchemy import text

from gov.identity.v1 import events_pb2
from govkit import streams
from govkit.crashpoint import CRASH_EXIT_CODE
from govkit.db import Database
from govkit.devstack import Stack, free_port
from govkit.events import DEAD_LETTER_STREAM, MSG_ID_HEADER, build_event, parse_event
from tests.conftest import STACK_ENV, migrate_identity
from tests.support.databases import Databases
from tests.support.waiting import eventually


async def _stream_messages(nats_url: str, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    nc = await nats.connect(nats_url)
    try:
        jsm = nc.jsm()
        info = await jsm.stream_info(stream)
        out: list[tuple[str, dict[str, str], bytes]] = []
        if info.state.messages == 0:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await jsm.get_msg(stream, seq)
            out.append((msg.subject, dict(msg.headers or {}), msg.data))
        return out
    finally:
        await nc.close()


def _wait_exit(proc, timeout: float = 30) -> int:  # type: ignore[no-untyped-def]
    return proc.popen.wait(timeout)


@pytest_asyncio.fixture
async def crash_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("crash"), base_env=STACK_ENV)
    stack.start_nats()
    try:
        yield stack
    finally:
        stack.stop()


async def test_relay_killed_between_publish_and_mark_publishes_exactly_once(
    crash_stack: Stack, databases: Databases
) -> None:
    db_url = databases.url("identity")
    # Seeding the admin commits two events (user created, role granted) to the outbox.
    env = migrate_identity(crash_stack, db_url)
    port = free_port()
    doomed = crash_stack.spawn(
        "identity-crash",
        [sys.executable, "-m", "services.identity", "serve"],
        crash_stack.env(
            **env,
            GOV_GRPC_PORT=str(port),
            GOV_NATS_URL=crash_stack.nats_url,
            GOV_CRASHPOINT="outbox.after_publish",
        ),
    )
    assert _wait_exit(doomed) == CRASH_EXIT_CODE
    db = Database(db_url)
    try:

        async def unpublished() -> int:
            async with db.engine.connect() as conn:
                return (
                    await conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                ).scalar_one()

        # The first event reached the stream, but the relay died before marking it.
        assert len(await _stream_messages(crash_stack.nats_url, "IDENTITY")) == 1
        assert await unpublished() == 2
        crash_stack.start_service("identity", env)

        async def drained() -> bool:
            return await unpublished() == 0

        await eventually(drained, within=15)
        async with db.engine.connect() as conn:
            event_ids = {r[0] for r in await conn.execute(text("SELECT event_id FROM outbox"))}
    finally:
        await db.close()
    messages = await _stream_messages(crash_stack.nats_url, "IDENTITY")
    # The republished first event was dropped by JetStream's duplicate window: one copy each.
    assert len(messages) == 2
    assert {headers[MSG_ID_HEADER] for _, headers, _ in messages} == event_ids
    assert [s for s, _, _ in messages] == ["identity.v1.user.created", "identity.v1.role.granted"]
    for _, headers, data in messages:
        assert parse_event(data).id == headers[MSG_ID_HEADER]


class ConsumerHarness:
    def __init__(self, stack: Stack, db_url: str, durable: str, *, batched: bool = False) -> None:
        self.stack, self.db_url, self.durable = stack, db_url, durable
        self.batched = batched
        self.db = Database(db_url)

    def start(self, crashpoint: str = ""):  # type: ignore[no-untyped-def]
        env = self.stack.env(GOV_CRASHPOINT=crashpoint) if crashpoint else self.stack.env()
        argv = [
            sys.executable,
            "-m",
            "tests.support.counter_consumer",
            self.db_url,
            self.stack.nats_url,
            self.durable,
        ] + (["batched"] if self.batched else [])
        return self.stack.spawn(f"consumer-{crashpoint or 'ok'}", argv, env)

    async def times_applied(self, event_id: str) -> int | None:
        try:
            async with self.db.engine.connect() as conn:
                return (
                    await conn.execute(text("SELECT times FROM applied WHERE event_id = :e"), {"e": event_id})
                ).scalar_one_or_none()
        except Exception:  # table not created yet
            return None

    async def processed(self, event_id: str) -> int:
        async with self.db.engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT count(*) FROM processed_events WHERE event_id = :e"), {"e": event_id}
                )
            ).scalar_one()


async def _publish(nats_url: str, resource: str, *, dead_letter_stream: bool = True) -> str:
    event = build_event(
        "identity.v1.user.updated",
        events_pb2.UserUpdated(changed_fields=["display_name"]),
        actor="system",
        resource=resource,
    )
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    # The stack applied the stream declarations (govkit.streams) when it started NATS.
    if not dead_letter_stream:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(DEAD_LETTER_STREAM)
    await js.publish(event.type, event.envelope, headers={MSG_ID_HEADER: event.id})
    await nc.close()
    return event.id


async def _pending_acks(nats_url: str, durable: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jsm().consumer_info("IDENTITY", durable)
        return info.num_ack_pending + info.num_pending
    finally:
        await nc.close()


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
@pytest.mark.parametrize("crashpoint", ["consumer.before_commit", "consumer.after_commit"])
async def test_consumer_crash_mid_handling_applies_event_once(
    crash_stack: Stack, databases: Databases, crashpoint: str, batched: bool
) -> None:
    harness = ConsumerHarness(crash_stack, databases.url("consumer"), "counter", batched=batched)
    # Batched, the three are fetched and committed together, so the kill takes all three with it.
    events = [await _publish(crash_stack.nats_url, f"users/{n}") for n in (42, 43, 44)]
    assert _wait_exit(harness.start(crashpoint)) == CRASH_EXIT_CODE
    expected_after_crash = None if crashpoint == "consumer.before_commit" else 1
    assert await harness.times_applied(events[0]) == expected_after_crash
    if batched:
        assert [await harness.times_applied(e) for e in events] == [expected_after_crash] * 3
    survivor = harness.start()
    try:

        async def done() -> bool:
            return [await harness.times_applied(e) for e in events] == [1, 1, 1] and (
                await _pending_acks(crash_stack.nats_url, "counter") == 0
            )

        # Redelivered after ack_wait, then applied (or recognised as done) and acked.
        await eventually(done, within=15)
        await asyncio.sleep(1.5)  # longer than ack_wait: nothing comes back
        for e in events:
            assert await harness.times_applied(e) == 1
            assert await harness.processed(e) == 1
    finally:
        crash_stack.stop_proc(survivor)
        await harness.db.close()


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_poison_event_is_dead_lettered_after_bounded_retries(
    crash_stack: Stack, databases: Databases, batched: bool
) -> None:
    harness = ConsumerHarness(crash_stack, databases.url("consumer"), "counter", batched=batched)
    good_before = await _publish(crash_stack.nats_url, "users/1")
    poison = await _publish(crash_stack.nats_url, "poison")
    good_after = await _publish(crash_stack.nats_url, "users/2")
    proc = harness.start()
    try:

        async def settled() -> bool:
            return (
                await harness.times_applied(good_after) == 1
                and len(await _stream_messages(crash_stack.nats_url, "DEADLETTER")) == 1
            )

        await eventually(settled, within=15)
        assert await harness.times_applied(good_before) == 1
        assert await harness.times_applied(poison) is None
        [(subject, headers, data)] = await _stream_messages(crash_stack.nats_url, "DEADLETTER")
        assert subject == "deadletter.counter.identity.v1.user.updated"
        assert parse_event(data).id == poison
        assert "never be handled" in headers["Gov-Error"]
    finally:
        crash_stack.stop_proc(proc)
        await harness.db.close()


async def _consumer_state(nats_url: str, durable: str) -> tuple[int, int]:
    """(deliveries so far, messages delivered but not acked) of a durable consumer."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jsm().consumer_info("IDENTITY", durable)
        return info.delivered.consumer_seq, info.num_ack_pending
    finally:
        await nc.close()


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_poison_event_whose_dead_letter_cannot_be_stored_is_kept_and_dead_lettered_later(
    crash_stack: Stack, databases: Databases, batched: bool
) -> None:
    """The dead-letter publish fails on the last delivery (there is no DEADLETTER stream yet): the
    event is not acked, comes back, and is dead-lettered once the stream exists. Acking it anyway
    would lose it, and JetStream's own max_deliver would never hand it out again."""
    harness = ConsumerHarness(crash_stack, databases.url("consumer"), "counter", batched=batched)
    poison = await _publish(crash_stack.nats_url, "poison", dead_letter_stream=False)
    proc = harness.start()  # max_deliver=3, backoff 0.2 s
    try:

        async def delivered_past_the_bound() -> bool:
            try:
                deliveries, unacked = await _consumer_state(crash_stack.nats_url, "counter")
            except nats.js.errors.NotFoundError:
                return False
            return deliveries >= 5 and unacked == 1

        await eventually(delivered_past_the_bound, within=30)
        nc = await nats.connect(crash_stack.nats_url)
        await streams.apply(nc.jetstream())  # what an operator does: the missing stream comes back
        await nc.close()

        async def dead_lettered() -> bool:
            return (
                len(await _stream_messages(crash_stack.nats_url, "DEADLETTER")) == 1
                and await _pending_acks(crash_stack.nats_url, "counter") == 0
            )

        await eventually(dead_lettered, within=30)
        [(subject, headers, data)] = await _stream_messages(crash_stack.nats_url, "DEADLETTER")
        assert subject == "deadletter.counter.identity.v1.user.updated"
        assert parse_event(data).id == poison and "never be handled" in headers["Gov-Error"]
        assert await harness.times_applied(poison) is None
    finally:
        crash_stack.stop_proc(proc)
        await harness.db.close()
