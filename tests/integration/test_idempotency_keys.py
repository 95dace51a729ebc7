"""govkit.idempotency against a real database (a migrated tickets schema), on both backends:
duplicates racing from two replicas make one effect, a first call that rolls back leaves the key to
the next, and rows from before responses were stored are refused clearly."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, insert, select

from gov.tickets.v1 import tickets_pb2 as pb
from govkit import migrations
from govkit.db import Database, utcnow
from govkit.devstack import REPO
from govkit.errors import FailedPrecondition, InvalidArgument
from govkit.idempotency import Command, IdempotencyKeys
from services.tickets.models import platform
from tests.support.databases import Databases, tickets_replicas

# How long the first call keeps its transaction open: the others must wait it out, not run.
HOLD_SECONDS = 0.3


class Boom(Exception):
    pass


async def _migrated(databases: Databases) -> str:
    url = databases.url("idem")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/tickets/migrations", url)
    return url


def _request(key: str, title: str = "电梯困人") -> pb.CreateTicketRequest:
    return pb.CreateTicketRequest(ticket=pb.Ticket(category="categories/lift", title=title), request_id=key)


async def _create(db: Database, command: Command, subject: str, *, fail: bool = False) -> pb.Ticket:
    """A command whose effect is one outbox row under `subject`; the transaction is held a while."""
    keys = IdempotencyKeys(db, platform.idempotency)
    if (earlier := await keys.recall(command, pb.Ticket)) is not None:
        return earlier
    async with db.transaction() as session:
        if (earlier := await keys.claim(session, command, pb.Ticket)) is not None:
            return earlier
        await session.execute(
            insert(platform.outbox).values(
                event_id=str(uuid.uuid4()), subject=subject, data=b"", headers="{}", created_at=utcnow()
            )
        )
        await asyncio.sleep(HOLD_SECONDS)
        if fail:
            raise Boom
        made = pb.Ticket(name=f"tickets/{uuid.uuid4()}", title="电梯困人")
        await keys.record(session, command, made, made.name)
        return made


async def _effects(db: Database, subject: str) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(select(func.count()).where(platform.outbox.c.subject == subject)) or 0
        )


async def test_duplicates_racing_from_two_replicas_make_one_effect(databases: Databases) -> None:
    async with tickets_replicas(databases, "idem") as replicas:
        command = Command.of("CreateTicket", "users/a", _request(uuid.uuid4().hex))
        subject = f"test.{uuid.uuid4().hex}"
        replies = await asyncio.gather(*(_create(replicas[i % 2], command, subject) for i in range(6)))
        assert len({r.name for r in replies}) == 1
        assert await _effects(replicas[0], subject) == 1
        # Another caller's same key is its own command.
        other = Command.of("CreateTicket", "users/b", _request(command.key))
        assert (await _create(replicas[0], other, subject)).name != replies[0].name
        assert await _effects(replicas[0], subject) == 2


async def test_a_first_call_that_rolls_back_leaves_the_key_to_the_next(databases: Databases) -> None:
    async with tickets_replicas(databases, "idem") as replicas:
        command = Command.of("CreateTicket", "users/a", _request(uuid.uuid4().hex))
        subject = f"test.{uuid.uuid4().hex}"
        first = asyncio.create_task(_create(replicas[0], command, subject, fail=True))
        await asyncio.sleep(HOLD_SECONDS / 3)  # the first holds the key now
        second = await _create(replicas[1], command, subject)
        with pytest.raises(Boom):
            await first
        assert await _effects(replicas[0], subject) == 1  # the second's; the first's rolled back
        assert (await _create(replicas[0], command, subject)).name == second.name


async def test_a_reused_key_or_a_row_without_a_response_is_refused(databases: Databases) -> None:
    db = Database(await _migrated(databases))
    try:
        command = Command.of("CreateTicket", "users/a", _request(uuid.uuid4().hex))
        await _create(db, command, "test.reused")
        with pytest.raises(InvalidArgument) as reused:
            await _create(
                db, Command.of("CreateTicket", "users/a", _request(command.key, "别的")), "test.reused"
            )
        assert reused.value.field == "request_id"
        # A key recorded before fingerprints and responses were kept (migration_ops v2).
        async with db.transaction() as session:
            await session.execute(
                insert(platform.idempotency).values(
                    scope=command.scope, request_id="legacy", resource="tickets/old", created_at=utcnow()
                )
            )
        legacy = Command(command.scope, "legacy", command.fingerprint)
        with pytest.raises(FailedPrecondition) as old:
            await _create(db, legacy, "test.legacy")
        assert "tickets/old" in old.value.message
        assert await _effects(db, "test.legacy") == 0
    finally:
        await db.close()
