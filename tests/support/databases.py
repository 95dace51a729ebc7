"""Fresh databases for a test session: SQLite files, or new PostgreSQL databases dropped afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from govkit import migrations
from govkit.db import Database
from govkit.devstack import REPO

PG_HOST = os.environ.get("GOV_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("GOV_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("GOV_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("GOV_TEST_PG_DATABASE", "test")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), 1):
            return True
    except OSError:
        return False


def _run(coro):  # type: ignore[no-untyped-def]
    # Sync fixtures may run while the session's event loop exists; use a thread of our own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Databases:
    def __init__(self, backend: str, folder: Path) -> None:
        self.backend = backend
        self.folder = folder
        self.created: list[str] = []

    def url(self, name: str) -> str:
        suffix = uuid.uuid4().hex[:8]
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.folder}/{name}-{suffix}.db"
        db = f"gov_test_{name}_{suffix}"
        _run(self._admin(f'CREATE DATABASE "{db}"'))
        self.created.append(db)
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def drop_all(self) -> None:
        if os.environ.get("GOV_TEST_KEEP_DATABASES") == "1":  # for looking into a failure afterwards
            return
        for db in self.created:
            with contextlib.suppress(Exception):
                _run(self._admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        self.created.clear()


@contextlib.asynccontextmanager
async def tickets_replicas(databases: Databases, name: str, count: int = 2) -> AsyncIterator[list[Database]]:
    """A freshly migrated tickets database and `count` Database objects on it: replicas that race
    each other as separate processes would, each with its own pool (and, on SQLite, its own lock
    queue, so only the file's lock is shared)."""
    url = databases.url(name)
    await asyncio.to_thread(migrations.upgrade, REPO / "services/tickets/migrations", url)
    replicas = [Database(url) for _ in range(count)]
    try:
        yield replicas
    finally:
        for db in replicas:
            await db.close()
