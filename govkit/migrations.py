"""Alembic, run the same way for every service: `python -m services.<name> migrate`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from govkit.db import is_sqlite, make_engine, postgres_connect_args

# The migrate command runs where the service would, with the same mounted CA (govkit.config checked it).
POSTGRES_CA_VARIABLE = "GOV_TLS_POSTGRES_CA_FILE"


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = database_url
    config.attributes["ssl_ca_file"] = os.environ.get(POSTGRES_CA_VARIABLE) or None
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    if is_sqlite(database_url):
        make_engine(database_url)  # creates the data folder
    command.upgrade(alembic_config(migrations_dir, database_url), revision)
    if is_sqlite(database_url):
        _write_ahead_logging(database_url)


def _write_ahead_logging(database_url: str) -> None:
    """Put a SQLite file in WAL mode once, here, where nothing else has it open. The mode stays with
    the file; every connection asks for it again (govkit.db), which is then a no-op. Left to the
    connections, the first ones of several processes starting together raced to switch a fresh
    file's journal, which needs the file to themselves, and one could fail with "database is locked"."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def run_env(context: ModuleType, metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        connect_args = {} if is_sqlite(url) else postgres_connect_args(config.attributes.get("ssl_ca_file"))
        engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
