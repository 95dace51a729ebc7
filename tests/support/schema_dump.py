"""Dump the schema each service's migrations build, to prove a refactor of released migrations
changes nothing: `python -m tests.support.schema_dump <tree> <out-dir>` for the tree before and after
(e.g. `git archive <commit> | tar -x -C /tmp/before`), then `diff -r` the two out-dirs.

For every service: `python -m services.<name> migrate` from <tree> on a fresh SQLite file and a fresh
PostgreSQL database (127.0.0.1:5432 as in tests/support/databases.py), then SQLite's own CREATE
statements (sqlite_master) and `pg_dump --schema-only`. Needs the sqlite3 and pg_dump commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tests.support.databases import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("identity", "blocks", "tickets", "points")
PSQL = ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]


def _migrate(tree: Path, service: str, url: str) -> None:
    env = {
        **os.environ,
        # The tree's own code first; generated protobuf code from this checkout if the tree has none.
        "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "gen"), str(REPO / "gen")]),
        "GOV_SIGNING_KEY_PASSPHRASE": "schema-dump-not-a-secret",
        "GOV_DATABASE_URL": url,
    }
    subprocess.run([sys.executable, "-m", f"services.{service}", "migrate"], cwd=tree, env=env, check=True)


def _sqlite(tree: Path, service: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / f"{service}.db"
        _migrate(tree, service, f"sqlite+aiosqlite:///{db}")
        query = "select type, name, tbl_name, sql from sqlite_master order by type, name"
        return subprocess.run(["sqlite3", str(db), query], capture_output=True, text=True, check=True).stdout


def _postgres(tree: Path, service: str) -> str:
    name = f"schema_dump_{service}_{uuid.uuid4().hex[:8]}"
    subprocess.run([*PSQL, "-d", PG_ADMIN_DB, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    try:
        _migrate(tree, service, f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                PG_HOST,
                "-p",
                str(PG_PORT),
                "-U",
                PG_USER,
                "--schema-only",
                "--no-owner",
                name,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run([*PSQL, "-d", PG_ADMIN_DB, "-qc", f'DROP DATABASE "{name}" WITH (FORCE)'], check=True)
    # Lines that name the dump run rather than the schema (a random restrict key on newer pg_dump).
    kept = [
        line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict", "-- Dumped"))
    ]
    return "\n".join(kept) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    tree, out = Path(argv[0]).resolve(), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        (out / f"{service}.sqlite.sql").write_text(_sqlite(tree, service))
        (out / f"{service}.postgres.sql").write_text(_postgres(tree, service))
    print(f"schemas of {', '.join(SERVICES)} written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
