"""Node moves in the region tree, and how every service that stores paths follows them.

A move re-parents a node: its path and every path below it change (`a/x/b07` -> `a/y/b07`).
The blocks service numbers its moves 1, 2, 3 ... without gaps, in a `tree_moves` table written in
the move's own transaction, and stamps every event that carries paths with the tree version it
was written at (`tree_version`: the number of moves committed before it; a move's own event
carries the move's number). A service that stores paths (role scopes, ticket nodes) keeps the
same table of the moves it has applied, and with it:

- applies move n only after move n-1: a move that overtook an earlier one still being retried
  waits (raises `NotYetApplicable`, so the consumer redelivers it later); two moves touching one
  subtree can never land in the wrong order, whether they move one node or an ancestor of it;
- applies each move once (one already in its table is skipped);
- brings the paths of an event written before some applied moves forward through them, and makes
  an event from a newer tree than it has reached wait for the moves before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, MetaData, String, Table, func, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from gov.blocks.v1 import events_pb2 as blocks_events
from gov.common.v1 import event_pb2
from govkit.consumer import ConsumerSpec
from govkit.db import UtcDateTime, rowcount
from govkit.events import unpack_payload
from govkit.sqlpaths import within

# Key of the PostgreSQL advisory lock that serialises path rewrites with the writers that read
# the tree version (any constant; every service has its own database).
_LOCK_KEY = 0x7472_6565  # "tree"


class NotYetApplicable(Exception):
    """An event depends on a move this service has not applied yet; deliver it again later."""


class ConflictingWrite(Exception):
    """A concurrent write clashed with a handler's (a unique key): deliver the event again.

    Raised instead of letting IntegrityError out of a handler, which the consumer runner reads
    as "another replica recorded this event id first" and would ack.
    """


@asynccontextmanager
async def conflicts_retried(session: AsyncSession) -> AsyncIterator[None]:
    """Run a handler's writes; a unique-key clash among them fails the delivery, to be retried."""
    try:
        yield
        await session.flush()
    except IntegrityError as exc:
        raise ConflictingWrite(str(exc.orig)) from exc


def moves_table(metadata: MetaData) -> Table:
    return Table(
        "tree_moves",
        metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("previous_path", String(300), nullable=False),
        Column("path", String(300), nullable=False),
        Column("time", UtcDateTime, nullable=False),
    )


async def lock(session: AsyncSession) -> None:
    """Hold the tree's paths still until this transaction ends.

    PostgreSQL: a transaction-scoped advisory lock, so a move's rewrite and a writer that read the
    tree version (to number a move, or to bring an event's paths forward) never interleave.
    SQLite needs nothing: its writers already run one at a time (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def moved(path: str, previous: str, new: str) -> str:
    """`path` after the node at `previous` moved to `new` (unchanged when not below it)."""
    return new + path[len(previous) :] if path == previous or path.startswith(previous + "/") else path


async def rewrite(
    session: AsyncSession, column: QueryableAttribute[str | None], previous: str, new: str, **also: object
) -> int:
    """UPDATE every row whose `column` is at or below `previous` to the same place below `new`.

    `also` sets further columns of the same rows (SQL expressions allowed). Returns the row count.
    """
    statement = (
        update(column.class_ if hasattr(column, "class_") else column.table)
        .where(within(column, previous))
        .values({column.key: literal(new) + func.substr(column, len(previous) + 1), **also})
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return rowcount(result)


class MoveLog:
    """The moves applied in this database, numbered as blocks numbered them."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def version(self, session: AsyncSession) -> int:
        """How many moves this database has applied (blocks: how many it has made)."""
        return int(await session.scalar(select(func.coalesce(func.max(self.table.c.seq), 0))) or 0)

    async def record(
        self, session: AsyncSession, seq: int, previous: str, new: str, time: dt.datetime
    ) -> None:
        await session.execute(
            self.table.insert().values(seq=seq, previous_path=previous, path=new, time=time)
        )

    async def admit(self, session: AsyncSession, seq: int) -> bool:
        """May move `seq` be applied now? False: applied already. Raises while an earlier one is missing.

        Call under `lock()`.
        """
        applied = await self.version(session)
        if seq <= applied:
            return False
        if seq > applied + 1:
            raise NotYetApplicable(f"move {seq} waits for move {applied + 1}")
        return True

    async def forward(self, session: AsyncSession, path: str, version: int) -> str:
        """`path` as written at tree `version`, carried through the moves applied here since.

        Raises NotYetApplicable when `version` is newer than this database: the path may name a
        node created after a move this database has still to apply. Call under `lock()`.
        """
        applied = await self.version(session)
        if version > applied:
            raise NotYetApplicable(f"an event from tree version {version} waits for move {applied + 1}")
        rows = await session.execute(
            select(self.table.c.previous_path, self.table.c.path)
            .where(self.table.c.seq > version)
            .order_by(self.table.c.seq)
        )
        for previous, new in rows:
            path = moved(path, previous, new)
        return path


# ---------------------------------------------------------------- following blocks' moves

MOVE_EVENT = "blocks.v1.node.changed"


@dataclass(frozen=True)
class Move:
    seq: int  # 0 for a move announced before blocks numbered them
    previous: str
    path: str
    time: dt.datetime


def move_of(event: event_pb2.Event) -> Move | None:
    """The node move a `blocks.v1.node.changed` event announces, or None (a rename, a new boundary)."""
    if event.type != MOVE_EVENT:
        return None
    change = unpack_payload(event, blocks_events.NodeChanged)
    if "parent" not in change.changed_fields or not change.previous_path:
        return None
    return Move(change.tree_version, change.previous_path, change.node.path, event.time.ToDatetime(dt.UTC))


Relocate = Callable[[AsyncSession, Move, str], Awaitable[None]]


# A move waits while an earlier one is retried: give a stuck earlier move about an hour (the
# consumer's last backoff repeats) before this one goes to the dead letters too.
MOVE_MAX_DELIVER = 30
MOVE_ACK_WAIT = 300.0


def follow_moves(durable: str, log: MoveLog, relocate: Relocate) -> ConsumerSpec:
    """A consumer that applies blocks' node moves to this service's paths: in order, each once.

    `relocate(session, move, actor)` rewrites the service's own paths (and announces what it
    changed); it runs in the consumer's transaction, under `lock()`, after the move is recorded.
    """
    actor = f"system:{durable}"

    async def handle(session: AsyncSession, event: event_pb2.Event) -> None:
        move = move_of(event)
        if move is None:
            return
        await lock(session)
        if move.seq:
            if not await log.admit(session, move.seq):
                return
            await log.record(session, move.seq, move.previous, move.path, move.time)
        # else: a move from before moves were numbered (an old stream): applied as it comes.
        async with conflicts_retried(session):
            await relocate(session, move, actor)

    return ConsumerSpec(
        durable=durable,
        stream="BLOCKS",
        subjects=[MOVE_EVENT],
        handler=handle,
        max_deliver=MOVE_MAX_DELIVER,
        # One move may rewrite a whole street's rows in one transaction: no redelivery meanwhile.
        ack_wait=MOVE_ACK_WAIT,
    )
