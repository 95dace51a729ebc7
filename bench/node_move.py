"""Benchmark tickets following one node move across districts, and check the district sums after it.

    .venv/bin/python bench/node_move.py [--backend sqlite|postgres] [--tickets 100000] [--seed 7]

1. load   A fresh tickets database (a SQLite file in a temporary directory, or a new PostgreSQL
          database on 127.0.0.1:5432, dropped afterwards), migrated to head, with --tickets tickets
          of district d1 over the past year, half of them in block d1/s1/c1/b1, written straight
          into the table; the month sums rebuilt (services.tickets.statistics.rebuild).
2. move   The tickets' node-move consumer handler (services.tickets.node_moves.SPEC) applies one
          `blocks.v1.node.changed` moving d1/s1/c1/b1 to d2/s9/c9/b1, in one transaction as the
          consumer runs it: the district sums of half the tickets move to d2, their paths and
          levels are rewritten. Reported: the time it took.
3. check  The month sums after the move must equal a rebuild from the moved tickets.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select

from bench._common import add_backend, create_pg_database, drop_pg_database
from gov.blocks.v1 import blocks_pb2, events_pb2
from govkit import migrations
from govkit.db import Database
from govkit.events import build_event, parse_event
from services.tickets import node_moves, statistics
from services.tickets.models import DistrictMonthBuckets, MonthBuckets, MonthStats, Ticket

REPO = Path(__file__).resolve().parent.parent

OLD, NEW = "d1/s1/c1/b1", "d2/s9/c9/b1"


def _rows(n: int, rng: random.Random) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        created = now - dt.timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
        state = rng.choice(["submitted", "accepted", "in_progress", "resolved", "closed", "rejected"])
        done = state in ("resolved", "closed")
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "category": f"c{i % 25}",
                "kind": "general",
                "state": state,
                "source": "resident",
                "title": "t",
                "description": "",
                "media": "[]",
                "latitude": None,
                "longitude": None,
                "household_id": None,
                "address": "",
                "node": OLD if i % 2 else "d1/s1/c1/b2",
                "street": "d1/s1",
                "district": "d1",
                "community": "d1/s1/c1",
                "reporter": "users/x",
                "contact_name": "",
                "contact_phone": "",
                "attributes": "{}",
                "priority": "normal",
                "matter_class": "public",
                "suggested_unit": "",
                "lead_unit": f"u{i % 8}" if state != "submitted" else "",
                "escalated": False,
                "acknowledge_deadline": created + dt.timedelta(hours=2),
                "resolve_deadline": created + dt.timedelta(days=1),
                "acknowledge_overdue": i % 11 == 0,
                "resolve_overdue": i % 7 == 0,
                "acknowledge_time": created + dt.timedelta(minutes=30),
                "resolve_time": created + dt.timedelta(hours=5) if done else None,
                "close_time": None,
                "resolution": "",
                "resolution_media": "[]",
                "mediation_outcome": "",
                "rating": rng.choice([None, 2, 4, 5]) if done else None,
                "rating_comment": "",
                "rating_by": "",
                "rating_time": None,
                "merged_into": "",
                "reject_reason": "",
                "possible_duplicates": "[]",
                "create_time": created,
                "update_time": created,
                "acknowledge_bucket": rng.randrange(60, 160),
                "resolve_bucket": rng.randrange(100, 220) if done else None,
                "on_time": done and i % 3 != 0,
                "same_day": done and i % 5 == 0,
            }
        )
    return rows


async def _sums(db: Database) -> list[list[tuple[object, ...]]]:
    """Every non-zero row of the three sum tables."""
    out = []
    async with db.sessions() as session:
        for model, live in (
            (MonthStats, lambda r: any(r[c] for c in statistics.COUNTERS)),
            (MonthBuckets, lambda r: r["count"]),
            (DistrictMonthBuckets, lambda r: r["count"]),
        ):
            rows = (await session.execute(select(model.__table__))).mappings()  # type: ignore[attr-defined]
            out.append(sorted(tuple(sorted(r.items())) for r in rows if live(r)))
    return out


async def run(url: str, tickets: int, seed: int) -> bool:
    await asyncio.to_thread(migrations.upgrade, REPO / "services/tickets/migrations", url)
    db = Database(url)
    try:
        rows = _rows(tickets, random.Random(seed))
        started = time.perf_counter()
        async with db.transaction() as session:
            for i in range(0, len(rows), 5_000):
                await session.execute(insert(Ticket), rows[i : i + 5_000])
        await statistics.rebuild(db)
        print(f"load   {tickets} tickets and their sums in {time.perf_counter() - started:.1f} s")
        change = events_pb2.NodeChanged(
            node=blocks_pb2.Node(name=f"nodes/{NEW}", path=NEW, code="b1", parent=NEW.rsplit("/", 1)[0]),
            changed_fields=["parent"],
            previous_path=OLD,
            tree_version=1,
        )
        event = parse_event(
            build_event("blocks.v1.node.changed", change, actor="bench", resource="n").envelope
        )
        started = time.perf_counter()
        async with db.transaction() as session:
            await node_moves.SPEC.handler(session, event)
        took = time.perf_counter() - started
        print(f"move   {tickets // 2} tickets from d1 to d2 (paths, levels, sums) in {took:.2f} s")
        moved = await _sums(db)
        await statistics.rebuild(db)
        same = moved == await _sums(db)
        print(f"check  sums after the move {'equal' if same else 'DIFFER FROM'} a rebuild")
        return same
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend(parser)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.backend == "postgres":
        name, url = create_pg_database("tickets")
        try:
            return 0 if asyncio.run(run(url, args.tickets, args.seed)) else 1
        finally:
            drop_pg_database(name)
    with tempfile.TemporaryDirectory() as folder:
        return (
            0 if asyncio.run(run(f"sqlite+aiosqlite:///{folder}/tickets.db", args.tickets, args.seed)) else 1
        )


if __name__ == "__main__":
    raise SystemExit(main())
