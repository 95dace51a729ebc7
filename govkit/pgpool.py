"""A small pool of raw asyncpg connections for single-statement reads (govkit.hotreads).

asyncpg's own Pool wraps every acquire and release in timeouts, shields and a reset step, and waits
for a release to finish: in a gRPC server answering from one single-row read, a read through it
cost 90 µs of the server's CPU against 50 µs from a plain list of connections (bench/README.md,
"Fifth pass"). A hot read needs none of that: it changes no session state, and it holds its
connection for one or two round trips. So this pool is a list, newest-used first:

- `acquire()` takes the newest idle connection, else opens one while fewer than `size` are open,
  else waits its turn (first come, first served), for `acquire_timeout` at most, connecting included;
- `release()` is synchronous: a connection goes to the first waiter, or back to the list; one the
  caller says to `discard` (its read failed or was cancelled), one the server closed, and one
  opened before `expire()` are closed instead, and their slot goes to the first waiter;
- connections idle for `idle_seconds` are closed (asyncpg's default lifetime, 5 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg


class PoolClosed(RuntimeError):
    """The pool was closed (the service is stopping)."""


class ConnectionPool:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        *,
        acquire_timeout: float = 30.0,
        idle_seconds: float = 300.0,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs room for one connection at least")
        self._connect = connect
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.idle_seconds = idle_seconds
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, released at), newest last
        # A waiter gets a connection, or None: the slot of a discarded one, to open one in.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._generation_of: dict[asyncpg.Connection, int] = {}  # every open connection
        self._in_use: set[asyncpg.Connection] = set()
        self._opening = 0  # slots taken by connections being opened
        self._generation = 0
        self._closed = False
        self._sweep: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def open(self) -> int:
        """Connections open, idle or in use, and being opened."""
        return len(self._generation_of) + self._opening

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> asyncpg.Connection:
        """A connection for the caller alone until `release()`; TimeoutError after `acquire_timeout`
        seconds of waiting for one (or opening one); a failure to connect as asyncpg raises it."""
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        while self._idle:
            conn, _ = self._idle.pop()
            if not conn.is_closed():
                self._in_use.add(conn)
                return conn
            self._forget(conn)  # the server closed it while it sat idle
        async with asyncio.timeout(self.acquire_timeout):
            if self.open < self.size:
                conn = await self._open_in_slot()
                self._in_use.add(conn)
                return conn
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                # Timed out or cancelled: anything handed over in the same moment is passed on.
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if handed is None:
                        self._opening -= 1  # the slot it was given
                    self._pass_on(handed)
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
            if handed is None:
                handed = await self._open_in_slot(taken=True)
            self._in_use.add(handed)
            return handed

    def release(self, conn: asyncpg.Connection, *, discard: bool = False) -> None:
        """Give a connection back: `discard` when its read failed or was cancelled (its state is
        not known, so it is closed rather than reused)."""
        if conn not in self._in_use:
            return  # given back twice, or not the pool's: nothing to count or close
        self._in_use.discard(conn)
        generation = self._generation_of.get(conn)
        if discard or self._closed or generation != self._generation or conn.is_closed():
            self._forget(conn)
            self._close_soon(conn)
            self._pass_on(None)
            return
        self._pass_on(conn)

    def expire(self) -> None:
        """The server went away: every connection opened before now is closed, the idle ones at
        once (they are as dead as the one that failed), those in use when they come back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._forget(conn)
            conn.terminate()
            self._pass_on(None)

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closed"))
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self._forget(conn)
            self._close_soon(conn)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    async def _open_in_slot(self, *, taken: bool = False) -> asyncpg.Connection:
        """Open a connection in a free slot (`taken`: one a discarded connection handed over)."""
        if not taken:
            self._opening += 1
        try:
            conn = await self._connect()
        except BaseException:
            self._opening -= 1
            self._pass_on(None)
            raise
        self._opening -= 1
        if self._closed:  # the pool closed while it opened
            self._close_soon(conn)
            raise PoolClosed("the connection pool is closed")
        self._generation_of[conn] = self._generation
        return conn

    def _pass_on(self, handed: asyncpg.Connection | None) -> None:
        """A connection (or, for None, a free slot) to the first waiter still waiting; else the
        connection goes idle (and a slot simply stays free)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if handed is None:
                    self._opening += 1  # the waiter opens a connection in this slot
                waiter.set_result(handed)
                return
        if handed is not None:
            self._idle.append((handed, asyncio.get_running_loop().time()))
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(self.idle_seconds, self._close_idle)

    def _close_idle(self) -> None:
        """Close what sat idle for `idle_seconds`; the list is oldest first."""
        self._sweep = None
        now = asyncio.get_running_loop().time()
        while self._idle and now - self._idle[0][1] >= self.idle_seconds:
            conn, _ = self._idle.pop(0)
            self._forget(conn)
            self._close_soon(conn)
        if self._idle:
            due = self._idle[0][1] + self.idle_seconds - now
            self._sweep = asyncio.get_running_loop().call_later(due, self._close_idle)

    def _forget(self, conn: asyncpg.Connection) -> None:
        self._generation_of.pop(conn, None)

    def _close_soon(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed():
            return
        task = asyncio.get_running_loop().create_task(self._close(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=5)
        except Exception:  # a connection that cannot say goodbye is cut
            conn.terminate()
