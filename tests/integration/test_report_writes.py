"""The write side of a report against a real database (a migrated tickets schema), on both backends:
`IdempotencyKeys.claim_finished` (claim and answer in one statement) under racing duplicates and a
first call that rolls back, and on PostgreSQL the single statement of `report_write.write_once`,
which writes the key, the ticket, its entry, its event and its month sums together or not at all."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import Boolean, DateTime, String, func, select
from sqlalchemy.exc import DBAPIError

from gov.tickets.v1 import tickets_pb2 as pb
from govkit import migrations
from govkit.db import Database, utcnow
from govkit.devstack import REPO
from govkit.errors import InvalidArgument
from govkit.idempotency import Command, IdempotencyKeys
from services.tickets import report_write
from services.tickets.models import platform
from tests.support.databases import Databases, tickets_replicas

HOLD_SECONDS = 0.3  # how long the first call keeps its transaction open


class Boom(Exception):
    pass


async def _migrated(databases: Databases) -> str:
    url = databases.url("reportwrite")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/tickets/migrations", url)
    return url


def _command(key: str, caller: str = "users/a", title: str = "电梯困人") -> Command:
    request = pb.CreateTicketRequest(
        ticket=pb.Ticket(category="categories/lift", title=title), request_id=key
    )
    return Command.of("CreateTicket", caller, request)


async def _create(db: Database, command: Command, subject: str, *, fail: bool = False) -> pb.Ticket:
    """A command whose effect is one outbox row under `subject`, claimed with its answer up front."""
    keys = IdempotencyKeys(db, platform.idempotency)
    made = pb.Ticket(name=f"tickets/{uuid.uuid4()}", title="电梯困人")
    async with db.transaction() as session:
        conn = await session.connection()
        if (earlier := await keys.claim_finished(conn, command, made, made.name)) is not None:
            return earlier
        await conn.execute(
            platform.outbox.insert().values(
                event_id=str(uuid.uuid4()), subject=subject, data=b"", headers="{}", created_at=utcnow()
            )
        )
        await asyncio.sleep(HOLD_SECONDS)
        if fail:
            raise Boom
    return made


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_claim_finished_racing_duplicates_make_one_effect(databases: Databases) -> None:
    async with tickets_replicas(databases, "reportwrite") as replicas:
        command = _command(uuid.uuid4().hex)
        subject = f"test.{uuid.uuid4().hex}"
        replies = await asyncio.gather(*(_create(replicas[i % 2], command, subject) for i in range(6)))
        assert len({r.name for r in replies}) == 1
        assert await _count(replicas[0], platform.outbox, platform.outbox.c.subject == subject) == 1
        with pytest.raises(InvalidArgument) as reused:
            await _create(replicas[1], _command(command.key, title="别的"), subject)
        assert reused.value.field == "request_id"
        assert await _count(replicas[0], platform.outbox, platform.outbox.c.subject == subject) == 1


async def test_claim_finished_rolled_back_leaves_the_key_to_the_next(databases: Databases) -> None:
    async with tickets_replicas(databases, "reportwrite") as replicas:
        command = _command(uuid.uuid4().hex)
        subject = f"test.{uuid.uuid4().hex}"
        first = asyncio.create_task(_create(replicas[0], command, subject, fail=True))
        await asyncio.sleep(HOLD_SECONDS / 3)  # the first holds the key now
        second = await _create(replicas[1], command, subject)
        with pytest.raises(Boom):
            await first
        assert await _count(replicas[0], platform.outbox, platform.outbox.c.subject == subject) == 1
        assert (await _create(replicas[0], command, subject)).name == second.name


def _params(ticket_id: str, command: Command, keys: IdempotencyKeys, month: str) -> dict[str, Any]:
    """write_once's values for a ticket with placeholder columns (the statement, not the rules, is
    under test)."""
    now = utcnow()
    ticket: dict[str, Any] = {}
    for c in report_write.TICKETS.c:
        if c.nullable:
            ticket[c.key] = None
        elif isinstance(c.type, Boolean):
            ticket[c.key] = False
        elif isinstance(c.type.impl if hasattr(c.type, "impl") else c.type, DateTime):
            ticket[c.key] = now + dt.timedelta(hours=1)
        else:
            ticket[c.key] = "" if isinstance(c.type, String) else "[]"
    ticket.update(id=ticket_id, create_time=now, update_time=now, state="submitted")
    made = pb.Ticket(name=f"tickets/{ticket_id}")
    entry = {c: "" for c in report_write.ENTRY_COLUMNS} | {
        "ticket_id": ticket_id,
        "time": now,
        "details": "{}",
    }
    event = {"event_id": str(uuid.uuid4()), "subject": "test.report", "data": b"", "headers": "{}"}
    sums = {
        "district": "yuhu",
        "month": month,
        "category": "lift",
        "lead_unit": "",
        "submitted": 1,
        "total": 1,
    }
    return {
        **{f"t_{k}": v for k, v in ticket.items()},
        **{f"e_{k}": v for k, v in entry.items()},
        **{f"o_{k}": v for k, v in (event | {"created_at": now}).items()},
        **{f"s_{k}": v for k, v in sums.items()},
        **keys.finished_row(command, made, made.name),
    }


async def test_a_report_written_in_one_statement_is_all_or_nothing(
    backend: str, databases: Databases
) -> None:
    if backend != "postgres":
        pytest.skip("the single statement is PostgreSQL's (SQLite writes a statement each in a transaction)")
    db = Database(await _migrated(databases))
    keys = IdempotencyKeys(db, platform.idempotency)
    statement = report_write.write_once(keys.claim_finished_statement("postgresql"), ("submitted", "total"))
    tickets, entries = report_write.TICKETS, report_write.ENTRIES
    try:
        command = _command(uuid.uuid4().hex)
        failing = str(uuid.uuid4())
        async with db.read_engine.connect() as conn:
            # The month sums' insert fails (the month is longer than its column): nothing stays.
            with pytest.raises(DBAPIError):
                await conn.scalar(statement, _params(failing, command, keys, "2026-11-30"))
        assert await _count(db, tickets, tickets.c.id == failing) == 0
        assert await _count(db, entries, entries.c.ticket_id == failing) == 0
        assert await _count(db, platform.outbox, platform.outbox.c.subject == "test.report") == 0
        assert await keys.recall(command, pb.Ticket) is None

        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        async with db.read_engine.connect() as conn:
            assert await conn.scalar(statement, _params(first, command, keys, "2026-11")) == 1
            # The same request id again: claimed already, so the statement writes nothing.
            assert await conn.scalar(statement, _params(second, command, keys, "2026-11")) == 0
        assert await _count(db, tickets, tickets.c.id.in_([first, second])) == 1
        assert await _count(db, entries, entries.c.ticket_id == first) == 1
        assert await _count(db, platform.outbox, platform.outbox.c.subject == "test.report") == 1
        assert (await keys.recall(command, pb.Ticket)) == pb.Ticket(name=f"tickets/{first}")
    finally:
        await db.close()
