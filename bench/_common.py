"""What every benchmark shares, with or without a running stack: PostgreSQL databases of its own, the
CPU model for the report, a temporary folder, the --json file.

    from bench._common import FreshDatabase, temp_folder, write_json, ...

bench/_stack.py builds the running stack on these; the single-process benchmarks (blocks_import.py,
tickets_stats.py, node_move.py) use them directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import shutil
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import sqlalchemy

from govkit import migrations

HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DB = "test"


# ----------------------------------------------------------------------------- PostgreSQL


async def pg_connect(database: str = PG_ADMIN_DB) -> asyncpg.Connection:
    return await asyncpg.connect(host=HOST, port=PG_PORT, user=PG_USER, database=database, timeout=10)


async def pg_admin(sql: str) -> None:
    conn = await pg_connect()
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_version() -> str:
    conn = await pg_connect()
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def create_pg_database(tag: str) -> tuple[str, str]:
    """A new database `gov_bench_<tag>_<random>`: its name and SQLAlchemy URL."""
    name = f"gov_bench_{tag}_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    return name, f"postgresql+asyncpg://{PG_USER}@{HOST}:{PG_PORT}/{name}"


def drop_pg_database(name: str) -> None:
    try:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as exc:  # report, but never hide the benchmark's own outcome
        print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)


class DatabaseUnavailable(Exception):
    pass


@dataclass
class FreshDatabase:
    """One service's empty database for a single-process benchmark: `<service>.db` in `folder`
    (SQLite), or a new PostgreSQL database `gov_bench_<tag>_…` dropped on the way out unless `keep`."""

    backend: str
    folder: Path
    service: str
    tag: str
    keep: bool = False
    url: str = ""
    pg_name: str | None = None
    sqlite_path: Path | None = None
    version: str = ""

    def __enter__(self) -> FreshDatabase:
        if self.backend == "sqlite":
            self.sqlite_path = self.folder / f"{self.service}.db"
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
            self.version = sqlite3.sqlite_version
            return self
        try:
            self.pg_name, self.url = create_pg_database(self.tag)
            self.version = asyncio.run(pg_version())
        except (OSError, asyncpg.PostgresError) as exc:
            self.__exit__()
            raise DatabaseUnavailable(f"PostgreSQL on {HOST}:{PG_PORT}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pg_name is None:
            return
        if self.keep:
            print(f"kept PostgreSQL database {self.pg_name}")
            return
        drop_pg_database(self.pg_name)

    def migrate(self, migrations_dir: Path) -> None:
        """Bring the empty database to the service's newest schema."""
        print(f"migrating a fresh {self.backend} database ...", flush=True)
        try:
            migrations.upgrade(migrations_dir, self.url)
        except Exception as exc:
            raise DatabaseUnavailable(f"migrations failed: {exc}") from exc


# ----------------------------------------------------------------------------- options, files, report


def add_backend(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """--backend: SQLite files in the temporary folder, or PostgreSQL databases on 127.0.0.1:5432."""
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite", help=help)


def add_json(parser: argparse.ArgumentParser) -> None:
    """--json OUT: the numbers also as JSON (see write_json)."""
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the numbers here")


@contextlib.contextmanager
def temp_folder(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh temporary folder (logs, SQLite files, generated data), removed afterwards unless `keep`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def write_json(path: Path | None, payload: Any, *, default: Callable[[Any], Any] | None = None) -> None:
    """The --json file, if one was asked for."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=default) + "\n")
    print(f"wrote {path}")


def software_and_machine() -> dict[str, Any]:
    """What a single-process report says it ran on (print_heading shows it)."""
    return {
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": psutil.cpu_count(),
    }


def print_heading(name: str, report: dict[str, Any], more: str) -> None:
    """A single-process report's first lines: the benchmark, when, the database, Python and machine."""
    print()
    print(f"{name} benchmark  {report['date']}  backend {report['backend']} {report['backend_version']}")
    print(
        f"python {report['python']}  SQLAlchemy {report['sqlalchemy']}  {report['cpu']} x{report['cpus']}  "
        + more
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
