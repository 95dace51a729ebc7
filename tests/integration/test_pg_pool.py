"""govkit.pgpool: the hot reads' own connections, on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from govkit.pgpool import ConnectionPool, PoolClosed
from tests.support.databases import Databases


class _Server:
    """Connects to the test database and counts the connections it opened."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.opened = 0

    async def connect(self) -> asyncpg.Connection:
        self.opened += 1
        return await asyncpg.connect(self.dsn)

    async def backends(self) -> int:
        """Client backends on the database, this query's own excluded."""
        admin = await asyncpg.connect(self.dsn)
        try:
            count: int = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            return count
        finally:
            await admin.close()


@pytest.fixture(scope="session", params=["postgres"])
def backend(backend: str) -> str:
    """PostgreSQL's half of conftest's backends only: the pool holds PostgreSQL connections."""
    return backend


@pytest_asyncio.fixture
async def server(databases: Databases) -> AsyncIterator[_Server]:
    # Its own database, so the backends counted are this test's.
    url = databases.url("pgpool")
    yield _Server(url.replace("postgresql+asyncpg://", "postgresql://"))


async def _read(pool: ConnectionPool, hold: float = 0.0) -> int:
    conn = await pool.acquire()
    try:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        await asyncio.sleep(hold)
        return pid
    finally:
        pool.release(conn)


async def test_at_most_size_connections_serve_many_readers_and_the_newest_is_reused(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 3)
    try:
        pids = await asyncio.gather(*(_read(pool, hold=0.02) for _ in range(30)))
        assert server.opened == 3 and pool.open == 3 and pool.idle == 3
        assert len(set(pids)) == 3
        assert await server.backends() == 3
        # One reader at a time takes the connection released last, again and again.
        first = await _read(pool)
        assert [await _read(pool) for _ in range(5)] == [first] * 5
        assert server.opened == 3
    finally:
        await pool.close()
    assert pool.open == 0
    await asyncio.sleep(0.1)
    assert await server.backends() == 0


async def test_a_waiter_times_out_and_leaves_no_slot_taken(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 1, acquire_timeout=0.1)
    try:
        held = await pool.acquire()
        with pytest.raises(TimeoutError):
            await pool.acquire()
        pool.release(held)
        pool.release(held)  # twice: the second changes nothing
        assert await _read(pool) == await _read(pool)
        assert server.opened == 1 and pool.open == 1 and pool.idle == 1
    finally:
        await pool.close()


async def test_waiters_are_served_in_turn_when_a_connection_comes_back(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 1)
    try:
        held = await pool.acquire()
        order: list[int] = []

        async def wait(n: int) -> None:
            conn = await pool.acquire()
            order.append(n)
            pool.release(conn)

        waiting = [asyncio.create_task(wait(n)) for n in range(4)]
        await asyncio.sleep(0.05)
        assert order == []
        pool.release(held)
        await asyncio.gather(*waiting)
        assert order == [0, 1, 2, 3]
        assert server.opened == 1
    finally:
        await pool.close()


async def test_a_discarded_connection_is_closed_and_its_slot_goes_to_a_waiter(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 1)
    try:
        held = await pool.acquire()
        waiter = asyncio.create_task(_read(pool))
        await asyncio.sleep(0.05)
        pool.release(held, discard=True)
        await asyncio.wait_for(waiter, 5)
        assert server.opened == 2 and pool.open == 1
        await asyncio.sleep(0.1)
        assert held.is_closed()
        assert await server.backends() == 1
    finally:
        await pool.close()


async def test_a_reader_cancelled_mid_statement_loses_no_slot(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 1)

    async def slow() -> None:
        conn = await pool.acquire()
        try:
            await conn.fetchval("SELECT pg_sleep(5)")
        except BaseException:
            pool.release(conn, discard=True)
            raise
        pool.release(conn)

    try:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.open == 0
        assert await _read(pool) > 0
        assert pool.open == 1
    finally:
        await pool.close()


async def test_expire_closes_idle_connections_and_those_in_use_when_they_come_back(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 3)
    try:
        await asyncio.gather(*(_read(pool, hold=0.02) for _ in range(2)))
        in_use = await pool.acquire()
        assert pool.open == 2
        pool.expire()
        assert pool.idle == 0 and pool.open == 1
        pool.release(in_use)
        assert pool.open == 0
        await _read(pool)
        assert server.opened == 3
        await asyncio.sleep(0.1)
        assert in_use.is_closed()
        assert await server.backends() == 1
    finally:
        await pool.close()


async def test_idle_connections_are_closed_after_their_idle_time(server: _Server) -> None:
    pool = ConnectionPool(server.connect, 2, idle_seconds=0.2)
    try:
        await asyncio.gather(_read(pool, hold=0.02), _read(pool, hold=0.02))
        assert pool.idle == 2
        await asyncio.sleep(0.1)
        await _read(pool)  # used again: it stays
        await asyncio.sleep(0.15)
        assert pool.idle == 1
        await asyncio.sleep(0.2)
        assert pool.idle == 0 and pool.open == 0
        await asyncio.sleep(0.1)
        assert await server.backends() == 0
    finally:
        await pool.close()


async def test_a_failed_connect_frees_its_slot_and_a_closed_pool_refuses(server: _Server) -> None:
    attempts = 0

    async def refused() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionRefusedError("no server")
        return await server.connect()

    pool = ConnectionPool(refused, 1)
    with pytest.raises(ConnectionRefusedError):
        await pool.acquire()
    assert pool.open == 0
    assert await _read(pool) > 0
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiter
    pool.release(held)  # closed, not kept
    assert pool.open == 0
    with pytest.raises(PoolClosed):
        await pool.acquire()
