"""Idempotent commands: a client request id makes a retried mutating call safe.

One semantics for every service (AIP-155):
- a retry with the same key and the same request returns the first call's response, whatever
  changed since (the stored response, not a fresh read);
- the same key with a different request is INVALID_ARGUMENT (field `request_id`; 422 at the gateway);
- concurrent duplicates wait for the first and get its result.

Keys are scoped by (method, caller). The key row is claimed at the start of the command's own write
transaction and filled with the response at its end, so the effect and its key commit or vanish
together. A concurrent duplicate's claim waits on the key's unique index until the first commits
(PostgreSQL) or waits for the write lock (SQLite serializes writers), then finds the stored response.

Usage in a flow:

    command = Command.of("CreateTicket", principal.subject, request)
    if (earlier := await keys.recall(command, pb.Ticket)) is not None:
        return earlier  # checked before validating, so a retry answers even if the rules changed
    ...validate...
    async with db.transaction() as session:
        if (earlier := await keys.claim(session, command, pb.Ticket)) is not None:
            return earlier
        ...do the work...
        await keys.record(session, command, response, "tickets/abc")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import Insert, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from govkit.db import Database, TransactionConflict, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument
from govkit.hotreads import HotRead, Reader

M = TypeVar("M", bound=Message)

KEY_FIELD = "request_id"
MAX_KEY_LENGTH = 100  # idempotency_keys.request_id
_MAX_SCOPE_LENGTH = 100  # idempotency_keys.scope

# (fingerprint, response, resource) of a stored key; the first two are NULL on rows from before v2
_Stored = tuple[str | None, bytes | None, str]
_FINISHED_COLUMNS = ("scope", "request_id", "fingerprint", "resource", "response", "created_at")


def fingerprint(request: Message, key_field: str = KEY_FIELD) -> str:
    """SHA-256 of the request's deterministic serialization with the key cleared."""
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField(key_field)
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()


def _scope(method: str, caller: str) -> str:
    scope = f"{method}:{caller}"
    if len(scope) <= _MAX_SCOPE_LENGTH:
        return scope
    # Never truncate: two long callers sharing a prefix would share each other's keys.
    return f"{method}:sha256:{hashlib.sha256(caller.encode()).hexdigest()}"[:_MAX_SCOPE_LENGTH]


@dataclass(frozen=True)
class Command:
    """One call of an idempotent method: its scope (method and caller), key and request fingerprint."""

    scope: str
    key: str  # "" when the client sent none: the call is not deduplicated
    fingerprint: str

    @classmethod
    def of(cls, method: str, caller: str, request: Message, key_field: str = KEY_FIELD) -> Command:
        key = getattr(request, key_field)
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidArgument(f"must be at most {MAX_KEY_LENGTH} characters", field=key_field)
        return cls(_scope(method, caller), key, fingerprint(request, key_field) if key else "")


class IdempotencyKeys:
    """The `idempotency_keys` table of one service's database (govkit.tables)."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.table = table
        # Built once: the Core entry points (`recall_on`, `claim_finished`) run on hot paths.
        self._stored_query = select(table.c.fingerprint, table.c.response, table.c.resource).where(
            table.c.scope == bindparam("scope"), table.c.request_id == bindparam("request_id")
        )
        self._stored_read = HotRead(self._stored_query)
        self._claim_finished: dict[str, Insert] = {}

    async def recall(self, command: Command, response_type: type[M]) -> M | None:
        """The first call's response if this key was used already (a read, outside any transaction)."""
        if not command.key:
            return None
        async with self.db.sessions() as session:
            row = await self._stored(session, command)
        return None if row is None else _replay(row, command, response_type)

    async def claim(self, session: AsyncSession, command: Command, response_type: type[M]) -> M | None:
        """Take the key for this transaction; or, when an earlier call holds it, that call's response.

        On PostgreSQL the insert waits while another transaction holds the same key uncommitted; if
        that one commits, this finds its row (READ COMMITTED: the next statement sees it), and if it
        rolls back, this one owns the key and does the work itself.
        """
        if not command.key:
            return None
        values = {
            "scope": command.scope,
            "request_id": command.key,
            "fingerprint": command.fingerprint,
            "resource": "",
            "created_at": utcnow(),
        }
        dialect = session.get_bind().dialect.name
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(self.table).values(values)
        claimed = await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["scope", "request_id"]).returning(
                self.table.c.request_id
            )
        )
        if claimed.first() is not None:
            return None
        return await self.earlier_answer(session, command, response_type)

    async def record(self, session: AsyncSession, command: Command, response: Message, resource: str) -> None:
        """Store the response under the claimed key, in the transaction that made it."""
        if not command.key:
            return
        await session.execute(
            update(self.table)
            .where(self.table.c.scope == command.scope, self.table.c.request_id == command.key)
            .values(resource=resource, response=response.SerializeToString())
        )

    async def recall_on(self, reads: Reader, command: Command, response_type: type[M]) -> M | None:
        """`recall` on hot reads the caller holds (govkit.hotreads; a read before its transaction)."""
        if not command.key:
            return None
        row = await reads.first(self._stored_read, scope=command.scope, request_id=command.key)
        return None if row is None else _replay((row[0], row[1], row[2]), command, response_type)

    async def claim_finished(
        self, conn: AsyncConnection, command: Command, response: M, resource: str
    ) -> M | None:
        """`claim` and `record` in one statement, for a command that knows its response before it
        writes anything: run it in the write transaction (on its connection) before the effect.

        Same semantics as claim-then-record: the key row and the effect commit or vanish together; a
        concurrent duplicate's insert waits on the key's unique index (PostgreSQL) or for the write
        lock (SQLite) and then answers as the first call did (or INVALID_ARGUMENT for another body);
        None means this call owns the key and does the work.
        """
        if not command.key:
            return None
        claimed = await conn.execute(
            self.claim_finished_statement(conn.dialect.name), self.finished_row(command, response, resource)
        )
        if claimed.first() is not None:
            return None
        return await self.earlier_answer(conn, command, type(response))

    def claim_finished_statement(self, dialect: str) -> Insert:
        """The insert of `claim_finished` (bound by `finished_row`), which returns the key when this
        call took it. A caller may run it as a CTE of a single statement that makes its effect only
        when the key was taken, then ask `earlier_answer` when it was not."""
        if (statement := self._claim_finished.get(dialect)) is None:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                insert(self.table)
                .values({c: bindparam(c) for c in _FINISHED_COLUMNS})
                .on_conflict_do_nothing(index_elements=["scope", "request_id"])
                .returning(self.table.c.request_id)
            )
            self._claim_finished[dialect] = statement
        return statement

    @staticmethod
    def finished_row(command: Command, response: Message, resource: str) -> dict[str, Any]:
        return {
            "scope": command.scope,
            "request_id": command.key,
            "fingerprint": command.fingerprint,
            "resource": resource,
            "response": response.SerializeToString(),
            "created_at": utcnow(),
        }

    async def earlier_answer(
        self, executor: AsyncSession | AsyncConnection, command: Command, response_type: type[M]
    ) -> M:
        """The stored answer of the call that holds the key this call failed to claim (committed by
        now: the claim waited for it)."""
        row = await self._stored(executor, command)
        if row is None:
            # The conflicting row was pruned in between (older than the retention): run again.
            raise TransactionConflict("the request id's earlier use expired meanwhile; try again")
        return _replay(row, command, response_type)

    async def _stored(self, executor: AsyncSession | AsyncConnection, command: Command) -> _Stored | None:
        result = await executor.execute(
            self._stored_query, {"scope": command.scope, "request_id": command.key}
        )
        row = result.first()
        return None if row is None else (row[0], row[1], row[2])


def _replay(row: _Stored, command: Command, response_type: type[M]) -> M:
    stored_fingerprint, response, resource = row
    if stored_fingerprint is None or response is None:
        # Recorded before responses were kept (an upgrade inside a client's retry window).
        raise FailedPrecondition(
            f"this request id was already used and made {resource}; read it, or retry with a new id",
            field=KEY_FIELD,
        )
    if stored_fingerprint != command.fingerprint:
        raise InvalidArgument(
            "was already used for a different request; send the same request again or use a new id",
            field=KEY_FIELD,
        )
    message = response_type()
    message.ParseFromString(response)
    return message
